//! Reading an OCI image layout (`index.json`, `blobs/sha256/…`): the parts both FROM
//! `oci:DIR` and `assemble push` need, so a layout is read, and its digests checked, one way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// A content descriptor, with the fields we use.
#[derive(Deserialize)]
pub(crate) struct Descriptor {
    pub digest: String,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `index.json`.
#[derive(Deserialize)]
pub(crate) struct Index {
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Deserialize)]
pub(crate) struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The file of blob `digest` in layout `dir`. The digest comes from a file anyone may have
/// written, so only `sha256:` and 64 hex digits are accepted: never a path outside `blobs/`.
pub(crate) fn blob(dir: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("unsupported digest `{digest}` in `{}`", dir.display()))?;
    Ok(dir.join("blobs/sha256").join(hex))
}
