//! Image references as Docker and podman read them: `alpine:3.20` is
//! `docker.io/library/alpine:3.20`, `user/img` is `docker.io/user/img:latest`, and a first
//! component with a `.` or `:` (or `localhost`) names the registry host. Docker Hub's API
//! lives at `registry-1.docker.io`, not at `docker.io` (distribution/reference's
//! `normalize.go` and docker's `registry` package; skopeo and podman use the same rules).

/// The registry Docker Hub names are normalised to.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's distribution API answers.
pub const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// A parsed `[host[:port]/]name[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port); `docker.io` for Docker Hub.
    pub host: String,
    /// Repository path (`library/alpine`, `team/app`).
    pub name: String,
    /// Tag, or `sha256:` digest when one was given (a digest wins over a tag, as in docker).
    pub reference: String,
}

/// Why a reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The repository path breaks the distribution grammar.
    #[error(
        "`{input}`: repository `{name}` is not valid ({reason}); use lowercase letters, digits and separators `.`, `_`, `__`, `-` between them, components joined by `/`"
    )]
    Name {
        /// What was parsed.
        input: String,
        /// The repository path.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "`{input}`: tag `{tag}` is not valid; a tag is up to 128 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`"
    )]
    Tag {
        /// What was parsed.
        input: String,
        /// The tag.
        tag: String,
    },
    /// The digest is not `sha256:` + 64 lowercase hex digits.
    #[error(
        "`{input}`: digest `{digest}` is not valid; expected sha256: followed by 64 lowercase hex digits"
    )]
    Digest {
        /// What was parsed.
        input: String,
        /// The digest.
        digest: String,
    },
}

impl Reference {
    /// Parses and normalises a reference (Docker Hub short names included).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        // A `:` after the last `/` starts the tag (`host:5000/app` has none).
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (rest, None),
        };
        let (host, name) = match path.split_once('/') {
            Some((first, remainder)) if is_host(first) => {
                let host = if first == "index.docker.io" {
                    DOCKER_HUB
                } else {
                    first
                };
                (host.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), path.to_string()),
        };
        let name = if host == DOCKER_HUB && !name.contains('/') {
            format!("library/{name}")
        } else {
            name
        };
        check_name(s, &name)?;
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(ReferenceError::Tag {
                    input: s.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        let reference = match digest {
            Some(d) => {
                let ok = d.strip_prefix("sha256:").is_some_and(|h| {
                    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if !ok {
                    return Err(ReferenceError::Digest {
                        input: s.to_string(),
                        digest: d.to_string(),
                    });
                }
                d.to_string()
            }
            None => tag.unwrap_or("latest").to_string(),
        };
        Ok(Self {
            host,
            name,
            reference,
        })
    }

    /// Whether `s` names its registry explicitly (`host[:port]/…`), as opposed to a short
    /// name that could also be a local image.
    pub fn names_registry(s: &str) -> bool {
        s.split_once('/').is_some_and(|(first, _)| is_host(first))
    }

    /// The host the distribution API is reached at.
    pub fn endpoint(&self) -> &str {
        endpoint(&self.host)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if self.reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        write!(f, "{}/{}{sep}{}", self.host, self.name, self.reference)
    }
}

/// The API host for a registry name (`docker.io` → `registry-1.docker.io`).
pub fn endpoint(host: &str) -> &str {
    if host == DOCKER_HUB || host == "index.docker.io" {
        DOCKER_HUB_ENDPOINT
    } else {
        host
    }
}

/// distribution/reference: the first component is a host when it has a `.` or a `:`, is
/// `localhost`, or has an uppercase letter (repository paths are lowercase).
fn is_host(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// `path-component := [a-z0-9]+ (separator [a-z0-9]+)*`, `separator := [_.] | __ | -+`.
fn check_name(input: &str, name: &str) -> Result<(), ReferenceError> {
    let err = |reason| ReferenceError::Name {
        input: input.to_string(),
        name: name.to_string(),
        reason,
    };
    if name.len() > 255 {
        return Err(err("longer than 255 characters"));
    }
    for comp in name.split('/') {
        let b = comp.as_bytes();
        if b.is_empty() {
            return Err(err("empty path component"));
        }
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(err(
                "a component starts or ends with a separator or uppercase letter",
            ));
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(err("bad separator or character"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(s: &str) -> (String, String, String) {
        let r = Reference::parse(s).unwrap();
        (r.host, r.name, r.reference)
    }

    fn t(h: &str, n: &str, r: &str) -> (String, String, String) {
        (h.into(), n.into(), r.into())
    }

    #[test]
    fn docker_hub_short_names() {
        assert_eq!(parts("alpine"), t("docker.io", "library/alpine", "latest"));
        assert_eq!(
            parts("alpine:3.20"),
            t("docker.io", "library/alpine", "3.20")
        );
        assert_eq!(parts("user/img"), t("docker.io", "user/img", "latest"));
        assert_eq!(parts("user/img:v1"), t("docker.io", "user/img", "v1"));
        assert_eq!(
            parts("docker.io/alpine:3.20"),
            t("docker.io", "library/alpine", "3.20")
        );
        assert_eq!(
            parts("index.docker.io/library/alpine"),
            t("docker.io", "library/alpine", "latest")
        );
        assert_eq!(
            parts("docker.io/library/alpine:3.20").0,
            parts("alpine:3.20").0
        );
        assert_eq!(
            Reference::parse("alpine:3.20").unwrap().endpoint(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("alpine:3.20").unwrap().to_string(),
            "docker.io/library/alpine:3.20"
        );
    }

    #[test]
    fn registry_hosts_ports_and_digests() {
        assert_eq!(
            parts("127.0.0.1:5000/team/app:1.2"),
            t("127.0.0.1:5000", "team/app", "1.2")
        );
        assert_eq!(parts("localhost/app"), t("localhost", "app", "latest"));
        assert_eq!(
            parts("localhost:5000/app"),
            t("localhost:5000", "app", "latest")
        );
        assert_eq!(
            parts("reg.example/alpine:3.15"),
            t("reg.example", "alpine", "3.15")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parts(&format!("alpine:3@{d}")),
            t("docker.io", "library/alpine", &d)
        );
        assert_eq!(parts(&format!("ghcr.io/o/r@{d}")), t("ghcr.io", "o/r", &d));
        assert_eq!(
            Reference::parse("ghcr.io/o/r:1").unwrap().endpoint(),
            "ghcr.io"
        );
        assert!(Reference::names_registry("127.0.0.1:5000/a"));
        assert!(!Reference::names_registry("user/img"));
        assert!(!Reference::names_registry("alpine:3.20"));
    }

    #[test]
    fn invalid_references_are_refused_with_the_reason() {
        for bad in [
            "Alpine",
            "user/Img",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a:",
            "a:-x",
            "a@sha256:xyz",
            "a@md5:00",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
        let e = Reference::parse("user/Img").unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
        assert!(Reference::parse("a__b.c-d---e/f_g").is_ok());
    }

    proptest! {
        /// Whatever is printed parses back to itself, and short names get Docker Hub.
        #[test]
        fn display_round_trips(
            comps in proptest::collection::vec("[a-z0-9]{1,4}([_-][a-z0-9]{1,4})?", 1..4),
            tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}",
            host in proptest::option::of("[a-z]{1,5}\\.(io|example)(:[0-9]{2,5})?"),
        ) {
            let name = comps.join("/");
            let s = match &host {
                Some(h) => format!("{h}/{name}:{tag}"),
                None => format!("{name}:{tag}"),
            };
            let r = Reference::parse(&s).unwrap();
            prop_assert_eq!(&r.reference, &tag);
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r.clone());
            if host.is_none() {
                prop_assert_eq!(r.host.as_str(), DOCKER_HUB);
                prop_assert!(r.name.contains('/'));
            }
        }

        /// Arbitrary input never panics.
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = Reference::parse(&s);
        }
    }
}
