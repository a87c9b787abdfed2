//! A real JWKS server for tests (plain HTTP on 127.0.0.1, a thread answering
//! `GET /jwks` with the current key set) and RSA JWT keys that mint tokens, as GitLab's
//! `id_tokens` are: RS256 with a `kid`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use apk::keys::PrivateKey;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

/// An RSA key that signs JWTs.
#[derive(Clone)]
pub struct JwtKey {
    /// The `kid` tokens carry and the JWKS lists.
    pub kid: String,
    /// The key.
    pub key: PrivateKey,
}

impl JwtKey {
    /// The fixture RSA key under `kid`.
    pub fn fixture(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            key: crate::fixture_key(),
        }
    }

    /// A freshly generated 2048-bit key under `kid`.
    pub fn generate(kid: &str) -> Self {
        let (key, _) = apk::keys::generate("jwt@test.invalid", 2048, 1_700_000_000)
            .expect("generate an RSA key");
        Self {
            kid: kid.into(),
            key,
        }
    }

    /// The public JWK (`kty: RSA`, `alg: RS256`, `use: sig`).
    pub fn jwk(&self) -> Value {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let public = self.key.rsa().to_public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64.encode(public.n().to_bytes_be()),
            "e": b64.encode(public.e().to_bytes_be()),
        })
    }

    /// An RS256 token with `claims`, signed by this key, naming `kid`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_kid(claims, &self.kid)
    }

    /// An RS256 token signed by this key but naming `kid` (for key-confusion tests).
    pub fn token_with_kid(&self, claims: &Value, kid: &str) -> String {
        let der = self.key.rsa().to_pkcs1_der().expect("PKCS#1 DER");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            .expect("sign a JWT")
    }

    /// The public key as PEM (what an HS256 key-confusion attack uses as the secret).
    pub fn public_pem(&self) -> String {
        self.key.public_key().to_pem().expect("public PEM")
    }
}

/// Unix time now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A JWKS endpoint on 127.0.0.1, stopped on drop.
pub struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    /// Serves `keys` (JWKs) at `http://127.0.0.1:<port>/jwks`.
    pub fn start(keys: &[Value]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the JWKS server");
        let addr = listener.local_addr().expect("local address");
        let keys = Arc::new(Mutex::new(json!({ "keys": keys })));
        let fetches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (keys, fetches, stop) = (keys.clone(), fetches.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let body = keys.lock().unwrap().to_string();
                    if answer(&conn, &body) {
                        fetches.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Self {
            addr,
            keys,
            fetches,
            stop,
            thread: Some(thread),
        }
    }

    /// The JWKS URL.
    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Replaces the served keys (key rotation).
    pub fn set_keys(&self, keys: &[Value]) {
        *self.keys.lock().unwrap() = json!({ "keys": keys });
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one HTTP/1.1 request; true if it was `GET /jwks`.
fn answer(conn: &TcpStream, body: &str) -> bool {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return false;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let is_jwks = request_line.starts_with("GET /jwks ");
    let (status, body) = if is_jwks {
        ("200 OK", body)
    } else {
        ("404 Not Found", "{}")
    };
    let mut w = conn;
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = w.flush();
    is_jwks
}
