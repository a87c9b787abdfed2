//! Authentication against a real JWKS server: the attack matrix is refused with a JSON
//! reason, good tokens (and `curl -F` with one) are accepted, keys rotate.

use base64::Engine as _;
use serde_json::{Value, json};
use testkit::jwks::{JwksServer, JwtKey, now};

use crate::support::{Env, Form, Pkg, client, upload};

fn config(jwks: &JwksServer, refetch: u64) -> String {
    format!(
        r#"jwt:
  jwks: {}
  refetch_interval: {refetch}
  claims:
    iss: https://gitlab.test
    aud: reposerve
    namespace_path: {{glob: "alpine/*"}}
    ref_protected: "true"
webhooks:
  touch: touch "$REPOSERVE_DIR/../hook-ran"
  fail: exit 3
"#,
        jwks.url()
    )
}

fn claims() -> Value {
    let t = now();
    json!({
        "iss": "https://gitlab.test",
        "aud": "reposerve",
        "sub": "project_path:alpine/aports:ref_type:branch:ref:master",
        "namespace_path": "alpine",
        "project_path": "alpine/aports",
        "ref_protected": "true",
        "iat": t,
        "nbf": t - 5,
        "exp": t + 600,
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

#[test]
fn attack_matrix_refused_good_token_accepted() {
    let key = JwtKey::fixture("k1");
    let other = JwtKey::generate("k2");
    let jwks = JwksServer::start(&[key.jwk()]);
    let env = Env::new(&config(&jwks, 3600));
    let server = env.start(&[]);
    let pkg = Pkg::new("authed", "1.0-r0").build();
    let t = now();
    // namespace_path must match `alpine/*`: the good claims use "alpine/aports".
    let good = with(claims(), "namespace_path", json!("alpine/aports"));

    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        b64(good.to_string().as_bytes())
    );
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(key.public_pem().as_bytes()),
        )
        .unwrap()
    };
    let tampered = {
        let tok = key.token(&good);
        let parts: Vec<&str> = tok.split('.').collect();
        let evil = with(
            good.clone(),
            "namespace_path",
            json!("alpine/evil-but-glob-ok"),
        );
        let evil = with(evil, "project_path", json!("evil/x"));
        format!(
            "{}.{}.{}",
            parts[0],
            b64(evil.to_string().as_bytes()),
            parts[2]
        )
    };
    let attacks: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("basic auth", Some("Basic dXNlcjpwYXNz".into())),
        ("garbage", Some("Bearer not.a.jwt".into())),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        (
            "HS256 with the RSA public key",
            Some(format!("Bearer {hs256}")),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                key.token(&with(
                    with(good.clone(), "exp", json!(t - 3600)),
                    "nbf",
                    json!(t - 7200)
                ))
            )),
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                key.token(&with(
                    with(good.clone(), "nbf", json!(t + 3600)),
                    "exp",
                    json!(t + 7200)
                ))
            )),
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                key.token(&without(good.clone(), "exp"))
            )),
        ),
        (
            "wrong issuer",
            Some(format!(
                "Bearer {}",
                key.token(&with(good.clone(), "iss", json!("https://evil.test")))
            )),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                key.token(&with(good.clone(), "aud", json!(["other"])))
            )),
        ),
        (
            "missing aud",
            Some(format!(
                "Bearer {}",
                key.token(&without(good.clone(), "aud"))
            )),
        ),
        (
            "missing claim",
            Some(format!(
                "Bearer {}",
                key.token(&without(good.clone(), "namespace_path"))
            )),
        ),
        (
            "different claim",
            Some(format!(
                "Bearer {}",
                key.token(&with(good.clone(), "namespace_path", json!("evil/aports")))
            )),
        ),
        (
            "glob does not cross /",
            Some(format!(
                "Bearer {}",
                key.token(&with(good.clone(), "namespace_path", json!("alpine/a/b")))
            )),
        ),
        (
            "a list for a claim other than aud (issue 13)",
            Some(format!(
                "Bearer {}",
                key.token(&with(
                    good.clone(),
                    "namespace_path",
                    json!(["evil", "alpine/aports"])
                ))
            )),
        ),
        (
            "a newline in a claim (issue 13)",
            Some(format!(
                "Bearer {}",
                key.token(&with(
                    good.clone(),
                    "namespace_path",
                    json!("alpine/aports\nevil")
                ))
            )),
        ),
        (
            "claim as boolean where text is configured",
            Some(format!(
                "Bearer {}",
                key.token(&with(good.clone(), "ref_protected", json!(false)))
            )),
        ),
        (
            "unknown kid",
            Some(format!("Bearer {}", key.token_with_kid(&good, "nope"))),
        ),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
        (
            "token for another key",
            Some(format!("Bearer {}", other.token_with_kid(&good, "k1"))),
        ),
    ];
    let before = env.snapshot();
    for (what, auth) in attacks {
        let (ct, body) = Form::new().file("p.apk", &pkg).finish();
        let mut req = client()
            .post(server.url("/upload"))
            .header("content-type", ct)
            .body(body);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        let b: Value = resp.json().unwrap();
        assert_eq!(b["error"], "unauthorized", "{what}: {b}");
        assert!(
            b["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{what}: {b}"
        );
        assert!(env.snapshot() == before, "{what}: the tree changed");
    }
    // The unknown kid did not cause a second fetch within the refetch interval.
    assert_eq!(jwks.fetches(), 1);

    // `aud` may be a list holding ours (issue 13: the only claim that may be a list).
    let several = with(good.clone(), "aud", json!(["other", "reposerve"]));
    let (s, b) = upload(
        &server,
        Some(&key.token(&several)),
        Form::new().file("p.apk", &pkg),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(env.index_names("edge", "main", "x86_64"), ["authed-1.0-r0"]);

    // Webhooks take the same authentication.
    let hook = |name: &str, tok: Option<&str>| {
        let mut r = client().post(server.url(&format!("/webhooks/{name}")));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send().unwrap().status().as_u16()
    };
    let tok = key.token(&good);
    let marker = env.tmp.path().join("hook-ran");
    assert_eq!(hook("touch", None), 401);
    assert!(!marker.exists());
    assert_eq!(hook("touch", Some(&tok)), 200);
    assert!(marker.exists());
    assert_eq!(hook("fail", Some(&tok)), 502);
    assert_eq!(hook("nope", Some(&tok)), 404);

    // `curl -F file=@pkg.apk` with a bearer token, as CI jobs do.
    let file = env.tmp.path().join("curl-1.0-r0.apk");
    fs_err::write(&file, Pkg::new("curlpkg", "1.0-r0").build()).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f", "-H"])
        .arg(format!("Authorization: Bearer {tok}"))
        .arg("-F")
        .arg(format!("file=@{}", file.display()))
        .args(["-F", "repo=community"])
        .arg(server.url("/upload"))
        .output();
    match out {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                env.index_names("edge", "community", "x86_64"),
                ["curlpkg-1.0-r0"]
            );
        }
        Err(e) => eprintln!("SKIP curl upload: curl cannot run here: {e}"),
    }
}

#[test]
fn unknown_kid_refetches_after_rotation() {
    let k1 = JwtKey::fixture("k1");
    let k2 = JwtKey::generate("k2");
    let jwks = JwksServer::start(&[k1.jwk()]);
    let env = Env::new(&config(&jwks, 0));
    let server = env.start(&[]);
    let good = with(claims(), "namespace_path", json!("alpine/aports"));
    let pkg = Pkg::new("rotated", "1.0-r0").build();
    let (s, _) = upload(
        &server,
        Some(&k2.token(&good)),
        Form::new().file("p.apk", &pkg),
    );
    assert_eq!(s, 401);
    jwks.set_keys(&[k1.jwk(), k2.jwk()]);
    let (s, b) = upload(
        &server,
        Some(&k2.token(&good)),
        Form::new().file("p.apk", &pkg),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(jwks.fetches(), 2);
}

#[test]
fn no_issuer_configured_refuses_unless_dev_mode() {
    let env = Env::new("");
    let pkg = Pkg::new("devpkg", "1.0-r0").build();
    {
        let server = env.start(&[]);
        let (s, b) = upload(&server, None, Form::new().file("p.apk", &pkg));
        assert_eq!(s, 401, "{b}");
    }
    let server = env.start(&["-d"]);
    let (s, b) = upload(&server, None, Form::new().file("p.apk", &pkg));
    assert_eq!(s, 200, "{b}");
    assert!(
        server.log().contains("DEVELOPMENT MODE"),
        "{}",
        server.log()
    );
}
