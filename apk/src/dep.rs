//! Dependency atoms (`[!]name[@tag][op version]`) and provides (`name[=version]`).
//!
//! The text forms are those of `D:`, `p:`, `i:` in an APKINDEX and installed database,
//! `depend`/`provides`/`install_if` in `.PKGINFO` and lines of `etc/apk/world`; see
//! `shared/docs/apk-format.md` §5.3 (syntax) and §5.4 (meaning). Parsing follows
//! apk-tools' `apk_dep_parse`/`apk_blob_pull_dep`: the name runs up to the first operator
//! character, the operator is the run of `<>=~` characters after it (in any order, so
//! `=>` reads as `>=`), and `@` splits a repository tag off the name. Writing follows
//! `apk_blob_push_dep`, so [`Display`](fmt::Display) output is canonical and parses back
//! to the same value.
//!
//! Unlike apk, which keeps an atom with an invalid version and marks it broken, we reject
//! it: an invalid version makes apk-tools 2.14 stop reading the rest of the line (§5.3),
//! so nothing we write may contain one.

use std::fmt;
use std::str::FromStr;

use crate::version;

/// A version operator, written as apk writes it (see [`Op::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `=`: exactly this version.
    Eq,
    /// `<`: older than.
    Lt,
    /// `<=`: older than or equal.
    Le,
    /// `>`: newer than.
    Gt,
    /// `>=`: newer than or equal.
    Ge,
    /// `~`: fuzzy, the version starts with these tokens (`~3.6` matches `3.6.9`).
    Fuzzy,
    /// `<~`: older than, or fuzzy-equal to. apk-tools 3.x only; 2.14 cannot print it.
    LeFuzzy,
    /// `>~`: newer than, or fuzzy-equal to. apk-tools 3.x only; 2.14 cannot print it.
    GeFuzzy,
    /// `><`: pinned to one exact build by its identity checksum (`Q1…`), as world holds
    /// after `apk add ./file.apk`.
    Checksum,
}

impl Op {
    /// The operator text apk writes (`apk_version_op_string`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Fuzzy => "~",
            Op::LeFuzzy => "<~",
            Op::GeFuzzy => ">~",
            Op::Checksum => "><",
        }
    }

    /// Reads an operator the way apk does: the characters are flags, in any order.
    fn from_symbols(symbols: &str) -> Option<Op> {
        let (mut less, mut greater, mut equal, mut fuzzy) = (false, false, false, false);
        for c in symbols.chars() {
            match c {
                '<' => less = true,
                '>' => greater = true,
                '=' => equal = true,
                // `~` implies "equal" in apk's masks: a fuzzy match is an equality.
                '~' => (fuzzy, equal) = (true, true),
                _ => return None,
            }
        }
        Some(match (less, greater, equal, fuzzy) {
            (false, false, true, false) => Op::Eq,
            (true, false, false, false) => Op::Lt,
            (true, false, true, false) => Op::Le,
            (false, true, false, false) => Op::Gt,
            (false, true, true, false) => Op::Ge,
            (false, false, true, true) => Op::Fuzzy,
            (true, false, true, true) => Op::LeFuzzy,
            (false, true, true, true) => Op::GeFuzzy,
            (true, true, false, false) => Op::Checksum,
            _ => return None,
        })
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `op version` part of an atom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Constraint {
    /// How the version is compared.
    pub op: Op,
    /// A valid apk version, or for [`Op::Checksum`] the `Q1…` identity checksum.
    pub version: String,
}

impl Constraint {
    /// Whether a package (or versioned provide) of version `version` satisfies this
    /// constraint, with apk's semantics (`apk_version_match`).
    ///
    /// [`Op::Checksum`] never matches here: it names a build, not a version, and only the
    /// package's identity checksum can satisfy it.
    pub fn matches(&self, version: &str) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let v = &self.version;
        match self.op {
            Op::Eq => version::compare(version, v) == Equal,
            Op::Lt => version::compare(version, v) == Less,
            Op::Le => version::compare(version, v) != Greater,
            Op::Gt => version::compare(version, v) == Greater,
            Op::Ge => version::compare(version, v) != Less,
            Op::Fuzzy => version::compare_fuzzy(version, v) == Equal,
            Op::LeFuzzy => version::compare_fuzzy(version, v) != Greater,
            Op::GeFuzzy => version::compare_fuzzy(version, v) != Less,
            Op::Checksum => false,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op, self.version)
    }
}

/// One dependency atom: `[!]name[@tag][op version]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// The package or provided name (`hello`, `so:libc.musl-x86_64.so.1`, `/bin/sh`).
    pub name: String,
    /// `!name`: the name must *not* be installed (in the constraint's range, if any).
    pub conflict: bool,
    /// `name@tag`: take it from the repositories tagged `@tag` (world only).
    pub tag: Option<String>,
    /// The version constraint; `None` accepts any version.
    pub constraint: Option<Constraint>,
}

impl Dependency {
    /// Whether a package or versioned provide `name` at `version` satisfies this atom's
    /// name and constraint. The `!` flag is ignored: the caller decides what a match of a
    /// conflict means.
    pub fn matches(&self, name: &str, version: &str) -> bool {
        self.name == name && self.constraint.as_ref().is_none_or(|c| c.matches(version))
    }

    /// Parses a space- or newline-separated list, as in `D:` or `etc/apk/world`.
    pub fn parse_list(s: &str) -> Result<Vec<Dependency>, DepError> {
        s.split_ascii_whitespace().map(str::parse).collect()
    }
}

/// Parses a space- or newline-separated list of dependency atoms (see
/// [`Dependency::parse_list`]).
pub fn parse_list(s: &str) -> Result<Vec<Dependency>, DepError> {
    Dependency::parse_list(s)
}

/// Writes atoms or provides separated by single spaces, as apk writes `D:` and `p:`.
pub fn format_list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

impl FromStr for Dependency {
    type Err = DepError;

    fn from_str(atom: &str) -> Result<Self, Self::Err> {
        let (conflict, rest) = match atom.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, atom),
        };
        let op_start = rest.find(is_op_char).unwrap_or(rest.len());
        let (name_tag, op_version) = rest.split_at(op_start);
        let constraint = if op_version.is_empty() {
            None
        } else {
            let op_len = op_version
                .find(|c| !is_op_char(c))
                .unwrap_or(op_version.len());
            let (symbols, text) = op_version.split_at(op_len);
            let op = Op::from_symbols(symbols).ok_or_else(|| DepError::Operator {
                atom: atom.to_owned(),
                op: symbols.to_owned(),
            })?;
            Some(parse_constraint(atom, op, text)?)
        };
        let (name, tag) = match name_tag.split_once('@') {
            Some((name, tag)) => (name, Some(tag)),
            None => (name_tag, None),
        };
        check_name(atom, name, NameRule::Provided)?;
        if let Some(tag) = tag
            && (tag.is_empty() || !tag.chars().all(is_package_name_char))
        {
            return Err(DepError::Tag {
                atom: atom.to_owned(),
                tag: tag.to_owned(),
            });
        }
        Ok(Dependency {
            name: name.to_owned(),
            conflict,
            tag: tag.map(str::to_owned),
            constraint,
        })
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, "@{tag}")?;
        }
        if let Some(constraint) = &self.constraint {
            write!(f, "{constraint}")?;
        }
        Ok(())
    }
}

/// One provided name: `name` (a virtual) or `name=version` (acts like a package of that
/// name and version, §5.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provide {
    /// The provided name (`so:libc.so.6`, `cmd:hello`, `/bin/sh`, `sh`).
    pub name: String,
    /// The provided version; `None` makes the name virtual.
    pub version: Option<String>,
}

impl Provide {
    /// Parses a space- or newline-separated list, as in `p:` or `provides =` lines.
    pub fn parse_list(s: &str) -> Result<Vec<Provide>, DepError> {
        s.split_ascii_whitespace().map(str::parse).collect()
    }
}

impl FromStr for Provide {
    type Err = DepError;

    fn from_str(atom: &str) -> Result<Self, Self::Err> {
        let op_start = atom.find(is_op_char).unwrap_or(atom.len());
        let (name, op_version) = atom.split_at(op_start);
        check_name(atom, name, NameRule::Provided)?;
        if op_version.is_empty() {
            return Ok(Provide {
                name: name.to_owned(),
                version: None,
            });
        }
        // apk reads `p:` with the dependency parser, but only `=` means anything there and
        // abuild writes nothing else.
        let op_len = op_version
            .find(|c| !is_op_char(c))
            .unwrap_or(op_version.len());
        let (symbols, text) = op_version.split_at(op_len);
        if symbols != "=" {
            return Err(DepError::ProvideOperator {
                atom: atom.to_owned(),
                op: symbols.to_owned(),
            });
        }
        let constraint = parse_constraint(atom, Op::Eq, text)?;
        Ok(Provide {
            name: name.to_owned(),
            version: Some(constraint.version),
        })
    }
}

impl fmt::Display for Provide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(version) = &self.version {
            write!(f, "={version}")?;
        }
        Ok(())
    }
}

/// Whether `name` is a valid package name: `[A-Za-z0-9._+-]`, starting alphanumeric
/// (apk-package(5)).
pub fn is_valid_package_name(name: &str) -> bool {
    name_problem(name, NameRule::Package).is_none()
}

/// Whether `name` may be provided or depended on: a package name that may also contain
/// `:` `/` `,` `[` `]` (the `so:`/`cmd:`/`pc:` namespaces and paths such as `/bin/sh`).
pub fn is_valid_provided_name(name: &str) -> bool {
    name_problem(name, NameRule::Provided).is_none()
}

/// Why a dependency atom or provide could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DepError {
    /// The name is empty or contains characters apk does not allow.
    #[error("invalid dependency atom `{atom}`: name `{name}` {problem}")]
    Name {
        /// The whole atom as given.
        atom: String,
        /// The name part of it.
        name: String,
        /// What is wrong with the name.
        problem: NameProblem,
    },
    /// The operator characters do not form an apk operator (`<>`, `<>=`, …).
    #[error(
        "invalid dependency atom `{atom}`: `{op}` is not an operator (use = < > <= >= ~ or ><)"
    )]
    Operator {
        /// The whole atom as given.
        atom: String,
        /// The operator characters found.
        op: String,
    },
    /// An operator with nothing after it.
    #[error("invalid dependency atom `{atom}`: operator `{op}` is not followed by a version")]
    MissingVersion {
        /// The whole atom as given.
        atom: String,
        /// The operator.
        op: Op,
    },
    /// The version after the operator does not follow the apk version grammar (§5.1).
    #[error("invalid dependency atom `{atom}`: `{version}` is not a valid apk version")]
    Version {
        /// The whole atom as given.
        atom: String,
        /// The offending version text.
        version: String,
    },
    /// The text after `><` is not an identity checksum.
    #[error(
        "invalid dependency atom `{atom}`: `{checksum}` is not a package checksum (Q1…, Q2…, X1…, X2…)"
    )]
    Checksum {
        /// The whole atom as given.
        atom: String,
        /// The offending checksum text.
        checksum: String,
    },
    /// The repository tag after `@` is empty or contains invalid characters.
    #[error("invalid dependency atom `{atom}`: `@{tag}` is not a repository tag")]
    Tag {
        /// The whole atom as given.
        atom: String,
        /// The tag text after `@`.
        tag: String,
    },
    /// A provide with an operator other than `=`.
    #[error("invalid provide `{atom}`: provides take `name` or `name=version`, not `{op}`")]
    ProvideOperator {
        /// The whole provide as given.
        atom: String,
        /// The operator characters found.
        op: String,
    },
}

/// What is wrong with a name (see [`DepError::Name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The first character may not start a name.
    BadStart(char),
    /// A character that may not appear in a name.
    BadChar(char),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("is empty"),
            NameProblem::BadStart(c) => write!(f, "may not start with {c:?}"),
            NameProblem::BadChar(c) => write!(f, "may not contain {c:?}"),
        }
    }
}

#[derive(Clone, Copy)]
enum NameRule {
    Package,
    Provided,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '~')
}

fn is_package_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
}

fn name_problem(name: &str, rule: NameRule) -> Option<NameProblem> {
    let Some(first) = name.chars().next() else {
        return Some(NameProblem::Empty);
    };
    let provided = matches!(rule, NameRule::Provided);
    // Paths such as `/bin/sh` are provided names too, and `apk add --virtual .build-deps`
    // puts dot-names in world; package names start alphanumeric.
    if !(first.is_ascii_alphanumeric() || (provided && matches!(first, '/' | '.'))) {
        return Some(NameProblem::BadStart(first));
    }
    name.chars()
        .find(|&c| {
            !(is_package_name_char(c) || (provided && matches!(c, ':' | '/' | ',' | '[' | ']')))
        })
        .map(NameProblem::BadChar)
}

fn check_name(atom: &str, name: &str, rule: NameRule) -> Result<(), DepError> {
    match name_problem(name, rule) {
        None => Ok(()),
        Some(problem) => Err(DepError::Name {
            atom: atom.to_owned(),
            name: name.to_owned(),
            problem,
        }),
    }
}

fn parse_constraint(atom: &str, op: Op, text: &str) -> Result<Constraint, DepError> {
    if text.is_empty() {
        return Err(DepError::MissingVersion {
            atom: atom.to_owned(),
            op,
        });
    }
    if op == Op::Checksum {
        if !is_checksum(text) {
            return Err(DepError::Checksum {
                atom: atom.to_owned(),
                checksum: text.to_owned(),
            });
        }
    } else if !version::is_valid(text) {
        return Err(DepError::Version {
            atom: atom.to_owned(),
            version: text.to_owned(),
        });
    }
    Ok(Constraint {
        op,
        version: text.to_owned(),
    })
}

/// An identity checksum as `apk_blob_pull_digest` reads it: `Q1`/`Q2` + base64 of a
/// SHA-1 or SHA-256, `X1`/`X2` + hex, or a bare MD5 in hex (very old indexes).
fn is_checksum(text: &str) -> bool {
    let is_b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match text.get(..2) {
        Some("Q1" | "Q2") => matches!(text.len() - 2, 28 | 44) && is_b64(&text[2..]),
        Some("X1" | "X2") => matches!(text.len() - 2, 40 | 64) && is_hex(&text[2..]),
        _ => text.len() == 32 && is_hex(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dep(s: &str) -> Dependency {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_atoms() {
        assert_eq!(
            dep("hello>=1.0"),
            Dependency {
                name: "hello".into(),
                conflict: false,
                tag: None,
                constraint: Some(Constraint {
                    op: Op::Ge,
                    version: "1.0".into()
                }),
            }
        );
        let d = dep("!foo@edge<2.0-r1");
        assert!(d.conflict);
        assert_eq!(d.tag.as_deref(), Some("edge"));
        assert_eq!(d.constraint.unwrap().op, Op::Lt);
        let d = dep("so:libc.musl-x86_64.so.1");
        assert_eq!(d.name, "so:libc.musl-x86_64.so.1");
        assert_eq!(d.constraint, None);
        assert_eq!(dep("/bin/sh").name, "/bin/sh");
        assert_eq!(dep("python3~3.12").constraint.unwrap().op, Op::Fuzzy);
        let pin = dep("hello><Q1eVpkBa8EBwLEy0/TMxCt2vw1uVo=");
        assert_eq!(pin.constraint.as_ref().unwrap().op, Op::Checksum);
        assert!(!pin.matches("hello", "1.0"));
    }

    #[test]
    fn operators_are_flags_in_any_order_and_print_canonically() {
        for (text, canonical) in [
            ("a=>1", "a>=1"),
            ("a=<1", "a<=1"),
            ("a==1", "a=1"),
            ("a=~1", "a~1"),
            ("a~=1", "a~1"),
            ("a<~1", "a<~1"),
            ("a~>1", "a>~1"),
        ] {
            assert_eq!(dep(text).to_string(), canonical);
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "hello",
            "!hello",
            "hello=1.0-r0",
            "hello@testing>2",
            "!so:libfoo.so.1<=3_rc1",
            "cmd:sh",
            "pc:glib-2.0>=2.80",
            "py3.12:foo~1.2",
        ] {
            assert_eq!(dep(s).to_string(), s);
        }
    }

    #[test]
    fn matches_uses_apk_semantics() {
        assert!(dep("foo~3.6").matches("foo", "3.6.9-r0"));
        assert!(!dep("foo~3.8.1").matches("foo", "3.8"));
        assert!(dep("foo<2").matches("foo", "2_rc1"));
        assert!(!dep("foo<2").matches("foo", "2"));
        assert!(dep("foo<=2").matches("foo", "2"));
        assert!(dep("foo>=2").matches("foo", "2-r1"));
        assert!(dep("foo>2").matches("foo", "2_p1"));
        assert!(dep("foo=2").matches("foo", "2"));
        assert!(!dep("foo=2").matches("foo", "2-r0"));
        assert!(dep("foo<~3.6").matches("foo", "3.6.9"));
        assert!(dep("foo>~3.6").matches("foo", "3.6.0"));
        assert!(!dep("foo>~3.6").matches("foo", "3.5"));
        assert!(!dep("foo").matches("bar", "1"));
        assert!(
            dep("!foo").matches("foo", "1"),
            "conflict flag is the caller's business"
        );
    }

    #[test]
    fn errors_name_the_atom_and_the_problem() {
        let err = "hel lo".parse::<Dependency>().unwrap_err();
        assert!(matches!(
            err,
            DepError::Name {
                problem: NameProblem::BadChar(' '),
                ..
            }
        ));
        let err = "foo>=1.0_bogus".parse::<Dependency>().unwrap_err();
        assert_eq!(
            err,
            DepError::Version {
                atom: "foo>=1.0_bogus".into(),
                version: "1.0_bogus".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid dependency atom `foo>=1.0_bogus`: `1.0_bogus` is not a valid apk version"
        );
        assert!(matches!(
            "foo>=".parse::<Dependency>(),
            Err(DepError::MissingVersion { op: Op::Ge, .. })
        ));
        assert!(matches!(
            "foo<>=1".parse::<Dependency>(),
            Err(DepError::Operator { .. })
        ));
        assert!(matches!(
            "foo><1.0".parse::<Dependency>(),
            Err(DepError::Checksum { .. })
        ));
        assert!(matches!(
            "foo@>1".parse::<Dependency>(),
            Err(DepError::Tag { .. })
        ));
        assert!(matches!(
            ">1".parse::<Dependency>(),
            Err(DepError::Name {
                problem: NameProblem::Empty,
                ..
            })
        ));
        assert!(matches!(
            "!".parse::<Dependency>(),
            Err(DepError::Name { .. })
        ));
        assert!(matches!(
            "-foo".parse::<Dependency>(),
            Err(DepError::Name {
                problem: NameProblem::BadStart('-'),
                ..
            })
        ));
        assert!(matches!(
            "foo!".parse::<Dependency>(),
            Err(DepError::Name {
                problem: NameProblem::BadChar('!'),
                ..
            })
        ));
    }

    #[test]
    fn names() {
        assert!(is_valid_package_name("libstdc++"));
        assert!(is_valid_package_name("py3-foo_bar.baz"));
        assert!(!is_valid_package_name("so:libc.so.6"));
        assert!(!is_valid_package_name("_foo"));
        assert!(!is_valid_package_name(""));
        assert!(is_valid_provided_name("so:libc.so.6"));
        assert!(is_valid_provided_name("/bin/sh"));
        assert!(is_valid_provided_name("pc:foo[x],y"));
        assert!(!is_valid_provided_name("foo bar"));
        assert!(!is_valid_provided_name(":foo"));
    }

    #[test]
    fn lists() {
        let deps = parse_list("musl>=1.2  so:libc.musl-x86_64.so.1\n!busybox-binsh\n").unwrap();
        let names: Vec<&str> = deps.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["musl", "so:libc.musl-x86_64.so.1", "busybox-binsh"]);
        assert_eq!(
            format_list(&deps),
            "musl>=1.2 so:libc.musl-x86_64.so.1 !busybox-binsh"
        );
        assert!(parse_list("").unwrap().is_empty());
        assert!(matches!(
            parse_list("ok bad>=x"),
            Err(DepError::Version { .. })
        ));
    }

    #[test]
    fn provides() {
        let p: Vec<Provide> =
            Provide::parse_list("so:libc.so.6=6 cmd:hello=1.0-r0 /bin/sh sh").unwrap();
        assert_eq!(
            p[0],
            Provide {
                name: "so:libc.so.6".into(),
                version: Some("6".into())
            }
        );
        assert_eq!(p[1].version.as_deref(), Some("1.0-r0"));
        assert_eq!(
            p[2],
            Provide {
                name: "/bin/sh".into(),
                version: None
            }
        );
        assert_eq!(
            format_list(&p),
            "so:libc.so.6=6 cmd:hello=1.0-r0 /bin/sh sh"
        );
        assert!(matches!(
            "foo>=1".parse::<Provide>(),
            Err(DepError::ProvideOperator { .. })
        ));
        assert!(matches!(
            "foo=".parse::<Provide>(),
            Err(DepError::MissingVersion { .. })
        ));
        assert!(matches!(
            "foo=x".parse::<Provide>(),
            Err(DepError::Version { .. })
        ));
        assert!(matches!(
            "!foo".parse::<Provide>(),
            Err(DepError::Name { .. })
        ));
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,12}",
            "(so|cmd|pc|py3\\.12):[a-z0-9][a-z0-9._+-]{0,10}",
            "/[a-z]{1,5}(/[a-z]{1,5}){0,2}",
        ]
    }

    fn constraint() -> impl Strategy<Value = Constraint> {
        let op = prop_oneof![
            Just(Op::Eq),
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Ge),
            Just(Op::Fuzzy),
            Just(Op::LeFuzzy),
            Just(Op::GeFuzzy),
        ];
        prop_oneof![
            4 => (op, crate::version::tests::valid_version())
                .prop_map(|(op, version)| Constraint { op, version }),
            1 => "Q1[A-Za-z0-9+/]{27}=".prop_map(|version| Constraint { op: Op::Checksum, version }),
        ]
    }

    proptest! {
        #[test]
        fn dependency_round_trip(
            name in name(),
            conflict in any::<bool>(),
            tag in prop::option::of("[a-z][a-z0-9]{0,6}"),
            constraint in prop::option::of(constraint()),
        ) {
            let d = Dependency { name, conflict, tag, constraint };
            let text = d.to_string();
            prop_assert_eq!(text.parse::<Dependency>(), Ok(d));
        }

        #[test]
        fn provide_round_trip(
            name in name(),
            version in prop::option::of(crate::version::tests::valid_version()),
        ) {
            let p = Provide { name, version };
            prop_assert_eq!(p.to_string().parse::<Provide>(), Ok(p));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Dependency>();
            let _ = s.parse::<Provide>();
        }
    }
}
