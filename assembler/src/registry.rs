//! The OCI distribution API: pushing an image (`assemble push`) and pulling a base image
//! (`FROM registry/name:tag`), with anonymous, basic and bearer-token auth.
//!
//! Blobs go up monolithically (`POST` an upload, `PUT ?digest=`), skipping those the
//! registry has (`HEAD`); the manifest last. `tls_verify = false` talks plain HTTP, for
//! local registries as `skopeo --tls-verify=false` does.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::build::Reporter;
use crate::oci::{Index, Manifest, blob};
use crate::progress::{ProgressRead, human_bytes};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Deserialize;

pub use crate::reference::Reference;

/// A client for one registry.
pub struct Registry<'r> {
    client: Client,
    base: String,
    creds: Option<(String, String)>,
    token: std::cell::RefCell<Option<String>>,
    reporter: Option<&'r dyn Reporter>,
}

impl Registry<'static> {
    /// A client for `host` (a registry name: `docker.io` is reached at
    /// `registry-1.docker.io`); `creds` = user, password.
    pub fn new(
        host: &str,
        tls_verify: bool,
        creds: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let scheme = if tls_verify { "https" } else { "http" };
        Ok(Self {
            client: Client::builder()
                .connect_timeout(std::time::Duration::from_secs(30))
                .user_agent(concat!("assemble/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: format!("{scheme}://{}", crate::reference::endpoint(host)),
            creds,
            token: std::cell::RefCell::new(None),
            reporter: None,
        })
    }
}

impl<'r> Registry<'r> {
    /// The same client, showing blob transfers through `reporter`.
    pub fn reporting<'n>(self, reporter: &'n dyn Reporter) -> Registry<'n> {
        Registry {
            client: self.client,
            base: self.base,
            creds: self.creds,
            token: self.token,
            reporter: Some(reporter),
        }
    }

    fn progress(&self, what: &str, total: Option<u64>) -> Box<dyn crate::progress::Progress> {
        match self.reporter {
            Some(r) => r.progress(what, total),
            None => Box::new(crate::progress::Silent),
        }
    }

    /// Sends a request, answering one auth challenge (basic or bearer) if the registry asks.
    fn send(&self, make: &dyn Fn() -> RequestBuilder) -> anyhow::Result<Response> {
        let with_auth = |rb: RequestBuilder| match (&*self.token.borrow(), &self.creds) {
            (Some(t), _) => rb.bearer_auth(t),
            (None, Some((u, p))) => rb.basic_auth(u, Some(p)),
            (None, None) => rb,
        };
        let resp = with_auth(make()).send()?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if let Some(Challenge::Bearer(params)) = Challenge::parse(&challenge) {
            let field = |k: &str| {
                params
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            let realm = field("realm").context("bearer challenge without a realm")?;
            let mut q = Vec::new();
            if let Some(s) = field("service") {
                q.push(("service", s));
            }
            if let Some(s) = field("scope") {
                q.push(("scope", s));
            }
            let query: Vec<String> = q
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect();
            let url = if query.is_empty() {
                realm
            } else {
                let sep = if realm.contains('?') { '&' } else { '?' };
                format!("{realm}{sep}{}", query.join("&"))
            };
            let mut rb = self.client.get(&url);
            if let Some((u, p)) = &self.creds {
                rb = rb.basic_auth(u, Some(p));
            }
            #[derive(Deserialize)]
            struct Token {
                token: Option<String>,
                access_token: Option<String>,
            }
            let resp = rb.send()?;
            if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
                if self.creds.is_none() {
                    bail!(
                        "the token server refused an anonymous token (HTTP {}); set ASSEMBLE_REGISTRY_USER and ASSEMBLE_REGISTRY_PASSWORD",
                        resp.status()
                    );
                }
                bail!(
                    "the token server refused the credentials in ASSEMBLE_REGISTRY_USER / ASSEMBLE_REGISTRY_PASSWORD (HTTP {})",
                    resp.status()
                );
            }
            let t: Token = resp.error_for_status()?.json()?;
            *self.token.borrow_mut() = t.token.or(t.access_token);
            return Ok(with_auth(make()).send()?);
        }
        if self.creds.is_none() {
            bail!(
                "the registry asks for credentials; set ASSEMBLE_REGISTRY_USER and ASSEMBLE_REGISTRY_PASSWORD"
            );
        }
        bail!("the registry refused the credentials (401)")
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// Uploads a blob unless present.
    pub fn put_blob(&self, name: &str, digest: &str, path: &Path) -> anyhow::Result<()> {
        let head = self.send(&|| {
            self.client
                .head(self.url(&format!("{name}/blobs/{digest}")))
        })?;
        if head.status().is_success() {
            return Ok(());
        }
        let start = self.send(&|| {
            self.client
                .post(self.url(&format!("{name}/blobs/uploads/")))
        })?;
        if !start.status().is_success() {
            bail!(
                "starting an upload of {digest} failed: HTTP {}",
                start.status()
            );
        }
        let loc = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("the registry gave no upload location")?
            .to_string();
        let loc = if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest={digest}");
        let len = fs_err::metadata(path)?.len();
        let short = &digest[..digest.len().min(19)];
        // Streamed from the file (opened again if an auth challenge makes us retry).
        let put = self.send(&|| {
            let rb = self
                .client
                .put(&url)
                .header("content-type", "application/octet-stream");
            match fs_err::File::open(path) {
                Ok(f) => {
                    let p = self.progress(
                        &format!("Pushing {short} ({})", human_bytes(len)),
                        Some(len),
                    );
                    rb.body(reqwest::blocking::Body::sized(
                        ProgressRead::sized(f, p, len),
                        len,
                    ))
                }
                // Surfaces as a digest error from the registry, after the check above.
                Err(_) => rb.body(Vec::new()),
            }
        })?;
        if !put.status().is_success() {
            bail!(
                "uploading {digest} failed: HTTP {} {}",
                put.status(),
                put.text().unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Puts a manifest under `reference`.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("{name}/manifests/{reference}"));
        let r = self.send(&|| {
            self.client
                .put(&url)
                .header("content-type", media_type)
                .body(body.to_vec())
        })?;
        if !r.status().is_success() {
            bail!(
                "pushing the manifest failed: HTTP {} {}",
                r.status(),
                r.text().unwrap_or_default()
            );
        }
        Ok(())
    }

    fn get(&self, path: &str, accept: &str) -> anyhow::Result<Response> {
        let url = self.url(path);
        let r = self.send(&|| self.client.get(&url).header("accept", accept))?;
        if !r.status().is_success() {
            bail!("GET {url}: HTTP {}", r.status());
        }
        Ok(r)
    }

    /// Downloads an image: (config bytes, layer files in `dir`).
    pub fn pull(&self, r: &Reference, dir: &Path) -> anyhow::Result<(Vec<u8>, Vec<PathBuf>)> {
        const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
        #[derive(Deserialize)]
        struct Desc {
            digest: String,
            #[serde(default)]
            size: Option<u64>,
            #[serde(default)]
            platform: Option<Platform>,
        }
        #[derive(Deserialize)]
        struct Platform {
            architecture: String,
            os: String,
        }
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            manifests: Vec<Desc>,
            config: Option<Desc>,
            #[serde(default)]
            layers: Vec<Desc>,
        }
        let mut doc: Doc = self
            .get(&format!("{}/manifests/{}", r.name, r.reference), ACCEPT)?
            .json()?;
        if doc.config.is_none() {
            let arch = crate::containerfile::Platform::host().arch;
            let m = doc
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .with_context(|| format!("no linux/{arch} image in the index"))?;
            doc = self
                .get(&format!("{}/manifests/{}", r.name, m.digest), ACCEPT)?
                .json()?;
        }
        let config = doc.config.context("the manifest has no config")?;
        let mut cfg = Vec::new();
        self.get(&format!("{}/blobs/{}", r.name, config.digest), "*/*")?
            .read_to_end(&mut cfg)?;
        let mut layers = Vec::new();
        let n = doc.layers.len();
        for (i, l) in doc.layers.iter().enumerate() {
            let path = dir.join(format!("layer-{i}"));
            let resp = self.get(&format!("{}/blobs/{}", r.name, l.digest), "*/*")?;
            let total = l.size.or(resp.content_length());
            let what = format!("Pulling {r} layer {}/{n}", i + 1);
            let mut resp = ProgressRead::new(resp, self.progress(&what, total));
            let mut w = crate::layer::HashWriter::new(fs_err::File::create(&path)?);
            std::io::copy(&mut resp, &mut w)?;
            let (_, digest, _) = w.finish();
            if digest != l.digest {
                bail!("layer {} arrived with digest {digest}", l.digest);
            }
            layers.push(path);
        }
        Ok((cfg, layers))
    }
}

/// Pushes the OCI layout `dir` (as written by [`crate::export`]) to `dest`.
pub fn push_layout(
    dir: &Path,
    dest: &Reference,
    tls_verify: bool,
    creds: Option<(String, String)>,
    reporter: &dyn Reporter,
) -> anyhow::Result<String> {
    let index: Index = serde_json::from_slice(&fs_err::read(dir.join("index.json"))?)?;
    let m = index.manifests.first().context("empty OCI index")?;
    let bytes = fs_err::read(blob(dir, &m.digest)?)?;
    let manifest: Manifest = serde_json::from_slice(&bytes)?;
    let reg = Registry::new(&dest.host, tls_verify, creds)?.reporting(reporter);
    for d in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        reg.put_blob(&dest.name, &d.digest, &blob(dir, &d.digest)?)
            .with_context(|| format!("failed to push blob {}", d.digest))?;
    }
    reg.put_manifest(&dest.name, &dest.reference, &m.media_type, &bytes)?;
    Ok(m.digest.clone())
}

/// A `WWW-Authenticate` challenge (RFC 7235): `Bearer realm="…",service="…",scope="…"`.
/// Values are quoted strings that may hold commas (`scope="repository:a/b:pull,push"`),
/// so the header is tokenised, not split on `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// Bearer token auth with its parameters (names lowercased).
    Bearer(Vec<(String, String)>),
    /// Basic auth (or any other scheme we answer with the credentials).
    Other(String),
}

impl Challenge {
    fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return (!scheme.is_empty()).then(|| Self::Other(scheme.to_string()));
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    value.push(c);
                }
                value = value.trim().to_string();
            }
            params.push((key, value));
        }
        Some(Self::Bearer(params))
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_keep_commas_inside_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:team/app:pull,push""#,
        );
        let want = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            c,
            Some(Challenge::Bearer(vec![
                want("realm", "https://auth.docker.io/token"),
                want("service", "registry.docker.io"),
                want("scope", "repository:team/app:pull,push"),
            ]))
        );
        assert_eq!(
            Challenge::parse(r#"bearer Realm=http://127.0.0.1:1/t , scope="a\"b""#),
            Some(Challenge::Bearer(vec![
                want("realm", "http://127.0.0.1:1/t"),
                want("scope", "a\"b"),
            ]))
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Other("Basic".into()))
        );
        assert_eq!(Challenge::parse(""), None);
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn docker_hub_is_reached_at_registry_1() {
        let r = Registry::new("docker.io", true, None).unwrap();
        assert_eq!(
            r.url("library/alpine/manifests/3.20"),
            "https://registry-1.docker.io/v2/library/alpine/manifests/3.20"
        );
        let r = Registry::new("127.0.0.1:5000", false, None).unwrap();
        assert_eq!(r.url("a/tags/list"), "http://127.0.0.1:5000/v2/a/tags/list");
    }
}
