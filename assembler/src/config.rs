//! The image config as a build changes it, and its OCI / Docker JSON form.
//!
//! Our own serde types rather than oci-spec's: Docker's `Healthcheck` (which podman and
//! Docker read) is not part of the OCI spec types, and field order must be fixed so the
//! serialised bytes (and so the digest) never change between runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Docker's healthcheck form (durations in nanoseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Per check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Grace period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    /// Failures before unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// One history entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct History {
    /// RFC 3339.
    pub created: String,
    /// The instruction.
    pub created_by: String,
    /// True when the step changed only the config.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub empty_layer: bool,
}

/// Everything the Containerfile sets besides files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=value`, in definition order (a redefinition replaces in place).
    pub env: Vec<String>,
    /// ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// CMD.
    pub cmd: Option<Vec<String>>,
    /// WORKDIR.
    pub working_dir: String,
    /// USER.
    pub user: String,
    /// EXPOSE, as `80/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// LABEL and MAINTAINER.
    pub labels: BTreeMap<String, String>,
    /// VOLUME.
    pub volumes: BTreeSet<String>,
    /// STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// HEALTHCHECK.
    pub healthcheck: Option<Healthcheck>,
    /// SHELL (not part of the OCI config; used by RUN).
    pub shell: Option<Vec<String>>,
    /// ONBUILD triggers, as Docker's `OnBuild` (run when the image is a FROM base).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// One entry per instruction that produced a snapshot or changed the config.
    pub history: Vec<History>,
}

// The OCI image config as `to_oci_json` writes it, field order and all.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OciConfig<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    user: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<&'a str, Empty>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<&'a str, Empty>,
    #[serde(skip_serializing_if = "str::is_empty")]
    working_dir: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<&'a Healthcheck>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    on_build: &'a [String],
}
#[derive(Serialize)]
struct Empty {}
#[derive(Serialize)]
struct OciRootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: &'a [String],
}
#[derive(Serialize)]
struct OciImage<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    config: OciConfig<'a>,
    rootfs: OciRootFs<'a>,
    history: &'a [History],
}

impl ImageConfig {
    /// Sets `key` in the environment, replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }

    /// The value of `key` in the environment.
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// The shell RUN uses (`["/bin/sh", "-c"]` unless SHELL changed it).
    pub fn shell(&self) -> Vec<String> {
        self.shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The OCI image config JSON (`application/vnd.oci.image.config.v1+json`), which Docker
    /// and podman read as well. `diff_ids` are the uncompressed layer digests, bottom first.
    pub fn to_oci_json(&self, diff_ids: &[String], created: &str, arch: &str) -> Vec<u8> {
        let image = OciImage {
            created,
            architecture: arch,
            os: "linux",
            config: self.oci_config(),
            rootfs: OciRootFs {
                kind: "layers",
                diff_ids,
            },
            history: &self.history,
        };
        serde_json::to_vec(&image).expect("config serialises")
    }

    /// The `config` object of [`Self::to_oci_json`].
    fn oci_config(&self) -> OciConfig<'_> {
        OciConfig {
            user: &self.user,
            exposed_ports: self
                .exposed_ports
                .iter()
                .map(|p| (p.as_str(), Empty {}))
                .collect(),
            env: &self.env,
            entrypoint: self.entrypoint.as_ref(),
            cmd: self.cmd.as_ref(),
            volumes: self
                .volumes
                .iter()
                .map(|p| (p.as_str(), Empty {}))
                .collect(),
            working_dir: &self.working_dir,
            labels: &self.labels,
            stop_signal: self.stop_signal.as_ref(),
            healthcheck: self.healthcheck.as_ref(),
            on_build: &self.on_build,
        }
    }

    /// Reads the parts of a base image's OCI config we carry over.
    pub fn from_oci_json(bytes: &[u8]) -> serde_json::Result<Self> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct Config {
            user: Option<String>,
            exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
            env: Option<Vec<String>>,
            entrypoint: Option<Vec<String>>,
            cmd: Option<Vec<String>>,
            volumes: Option<BTreeMap<String, serde_json::Value>>,
            working_dir: Option<String>,
            labels: Option<BTreeMap<String, String>>,
            stop_signal: Option<String>,
            healthcheck: Option<Healthcheck>,
            on_build: Option<Vec<String>>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Image {
            config: Config,
            history: Vec<History>,
        }
        let i: Image = serde_json::from_slice(bytes)?;
        let c = i.config;
        Ok(Self {
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            labels: c.labels.unwrap_or_default(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            stop_signal: c.stop_signal,
            healthcheck: c.healthcheck,
            shell: None,
            on_build: c.on_build.unwrap_or_default(),
            history: i.history,
        })
    }
}

/// RFC 3339 UTC for Unix seconds, as OCI configs and history entries write them.
pub fn rfc3339(secs: u64) -> String {
    let t = apk::utc(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn config_round_trips_through_oci_json() {
        let mut c = ImageConfig::default();
        c.set_env("PATH", "/bin");
        c.set_env("A", "1");
        c.set_env("PATH", "/usr/bin");
        assert_eq!(c.env, ["PATH=/usr/bin", "A=1"]);
        c.exposed_ports.insert("80/tcp".into());
        c.cmd = Some(vec!["sh".into()]);
        c.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Healthcheck::default()
        });
        let json = c.to_oci_json(&["sha256:00".into()], "1970-01-01T00:00:00Z", "amd64");
        let back = ImageConfig::from_oci_json(&json).unwrap();
        assert_eq!(back.env, c.env);
        assert!(back.on_build.is_empty());
        c.on_build = vec!["RUN echo triggered".into()];
        let json = c.to_oci_json(&[], "1970-01-01T00:00:00Z", "amd64");
        assert!(String::from_utf8_lossy(&json).contains("\"OnBuild\":[\"RUN echo triggered\"]"));
        assert_eq!(
            ImageConfig::from_oci_json(&json).unwrap().on_build,
            c.on_build
        );
        assert_eq!(back.exposed_ports, c.exposed_ports);
        assert_eq!(back.healthcheck, c.healthcheck);
        assert!(
            String::from_utf8(json)
                .unwrap()
                .contains("\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"]}")
        );
    }
}
