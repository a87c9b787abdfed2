//! The OCI distribution API: pushing an image (`assemble push`) and pulling a base image
//! (`FROM registry/name:tag`), with anonymous, basic and bearer-token auth.
//!
//! Blobs go up monolithically (`POST` an upload, `PUT ?digest=`), skipping those the
//! registry has (`HEAD`); the manifest last. `tls_verify = false` talks plain HTTP, for
//! local registries as `skopeo --tls-verify=false` does.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Deserialize;

/// `host[:port]/name[:tag]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port).
    pub host: String,
    /// Repository name.
    pub name: String,
    /// Tag or `sha256:` digest.
    pub reference: String,
}

impl Reference {
    /// Parses a reference whose first component is a registry host (has a `.` or `:`, or is
    /// `localhost`); Docker Hub's short names are not supported.
    pub fn parse(s: &str) -> Option<Self> {
        let (host, rest) = s.split_once('/')?;
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return None;
        }
        let (name, reference) = match rest.split_once('@') {
            Some((n, d)) => (n, d.to_string()),
            None => match rest.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => (n, t.to_string()),
                _ => (rest, "latest".to_string()),
            },
        };
        Some(Self {
            host: host.to_string(),
            name: name.to_string(),
            reference,
        })
    }
}

/// A client for one registry.
pub struct Registry {
    client: Client,
    base: String,
    creds: Option<(String, String)>,
    token: std::cell::RefCell<Option<String>>,
}

impl Registry {
    /// A client for `host`; `creds` = user, password.
    pub fn new(
        host: &str,
        tls_verify: bool,
        creds: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        let scheme = if tls_verify { "https" } else { "http" };
        Ok(Self {
            client: Client::builder().build()?,
            base: format!("{scheme}://{host}"),
            creds,
            token: std::cell::RefCell::new(None),
        })
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
        if let Some(params) = challenge.strip_prefix("Bearer ") {
            let field = |k: &str| {
                params.split(',').find_map(|kv| {
                    let (key, v) = kv.trim().split_once('=')?;
                    (key == k).then(|| v.trim_matches('"').to_string())
                })
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
                format!("{realm}?{}", query.join("&"))
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
            let t: Token = rb.send()?.error_for_status()?.json()?;
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
        let bytes = fs_err::read(path)?;
        let put = self.send(&|| {
            self.client
                .put(&url)
                .header("content-type", "application/octet-stream")
                .body(bytes.clone())
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
        for (i, l) in doc.layers.iter().enumerate() {
            let path = dir.join(format!("layer-{i}"));
            let mut resp = self.get(&format!("{}/blobs/{}", r.name, l.digest), "*/*")?;
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
) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Desc {
        digest: String,
        #[serde(rename = "mediaType", default)]
        media_type: String,
    }
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Desc>,
    }
    #[derive(Deserialize)]
    struct Manifest {
        config: Desc,
        layers: Vec<Desc>,
    }
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index: Index = serde_json::from_slice(&fs_err::read(dir.join("index.json"))?)?;
    let m = index.manifests.first().context("empty OCI index")?;
    let bytes = fs_err::read(blob(&m.digest))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)?;
    let reg = Registry::new(&dest.host, tls_verify, creds)?;
    for d in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        reg.put_blob(&dest.name, &d.digest, &blob(&d.digest))
            .with_context(|| format!("failed to push blob {}", d.digest))?;
    }
    reg.put_manifest(&dest.name, &dest.reference, &m.media_type, &bytes)?;
    Ok(m.digest.clone())
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
    fn references() {
        let r = Reference::parse("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(
            (r.host.as_str(), r.name.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "team/app", "1.2")
        );
        assert_eq!(
            Reference::parse("localhost/app").unwrap().reference,
            "latest"
        );
        assert!(Reference::parse("app:1").is_none());
        assert!(Reference::parse("library/app").is_none());
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
