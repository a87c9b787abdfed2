//! `RUN --mount=…`: BuildKit's mount specs (`instructions/commands_runmount.go`), a CSV
//! list of `key=value` fields (and the bare `ro`, `rw`, `required`), with BuildKit's
//! defaults and checks.
//!
//! Stricter than BuildKit where it would silently ignore something: an option that does
//! nothing for the mount's type (`id` on a bind, `env` on a cache, `rw` on a secret, …) is
//! an error here, and so is a bind, cache or tmpfs mount without a `target`.
//!
//! The values are expanded by the engine with the step's variables before the spec is
//! parsed for running; [`MountSpec::check_static`] checks a spec as written, before the
//! first step, leaving the fields whose value holds a variable to the step.

use std::fmt;

use super::expand::{ExpandError, Vars, expand_word};

/// The kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A directory or file of the context, of a stage or of an image (read-only unless `rw`).
    Bind,
    /// A directory kept in the store across builds.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A file (or environment variable) holding a `--secret` given to the build.
    Secret,
    /// The SSH agent socket (refused by the engine: not supported).
    Ssh,
}

impl MountType {
    const ALL: [(&'static str, MountType); 5] = [
        ("bind", MountType::Bind),
        ("cache", MountType::Cache),
        ("tmpfs", MountType::Tmpfs),
        ("secret", MountType::Secret),
        ("ssh", MountType::Ssh),
    ];

    /// The name as written in `type=`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("bind", |(n, _)| n)
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Used by any number of steps at once (the default).
    Shared,
    /// A step finding it in use gets another instance.
    Private,
    /// A step finding it in use waits.
    Locked,
}

/// One `--mount`, its values expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountSpec {
    pub kind: MountType,
    /// `from=`: a stage or image (bind, cache); the context when `None`.
    pub from: Option<String>,
    /// `source=`/`src=`: a path in `from` (bind, cache), or the secret's id.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`: where the command sees it.
    pub target: Option<String>,
    pub readonly: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size: Option<u64>,
    /// `id=` of a cache or secret.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    /// `required`: a missing secret is an error rather than no mount.
    pub required: bool,
    /// `env=`: the secret also (or only, without `target`) as this variable.
    pub env: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A mount spec that cannot be used; `Display` is the one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MountError {
    pub message: String,
    /// What to write instead.
    pub hint: Option<String>,
}

impl MountError {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        Self {
            message: message.into(),
            hint: (!hint.is_empty()).then_some(hint),
        }
    }
}

impl From<ExpandError> for MountError {
    fn from(e: ExpandError) -> Self {
        Self::new(e.to_string(), "")
    }
}

/// Gives a field's value from its key and text (`None`: known only later).
type FieldValue<'a> = &'a mut dyn FnMut(&str, &str) -> Result<Option<String>, MountError>;

/// Every key BuildKit knows, for "did you mean" hints.
const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "env",
];

impl MountSpec {
    /// Parses `text` (the value of `--mount`), each field's value expanded with `vars`.
    pub fn parse(text: &str, vars: &dyn Vars, escape: char) -> Result<Self, MountError> {
        let expand = |v: &str| expand_word(v, vars, escape).map_err(MountError::from);
        Self::parse_with(text, &mut |_, v| expand(v).map(Some))
    }

    /// Checks `text` as written: the fields whose value holds a variable are left to
    /// [`MountSpec::parse`] at the step, except `from`, which BuildKit never expands.
    pub fn check_static(text: &str) -> Result<Self, MountError> {
        Self::parse_with(text, &mut |key, v| {
            let dollar = v.find('$').filter(|&i| i + 1 != v.len());
            match (key, dollar) {
                ("from", Some(_)) => Err(MountError::new(
                    "'from' doesn't support variable expansion, define alias stage instead",
                    "name the stage with `FROM … AS name` and write `from=name`",
                )),
                (_, Some(_)) => Ok(None),
                _ => Ok(Some(v.to_owned())),
            }
        })
    }

    /// The parse, `value(key, raw)` giving a field's value (`None`: skip the field).
    fn parse_with(text: &str, value: FieldValue<'_>) -> Result<Self, MountError> {
        let mut m = MountSpec {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            readonly: false,
            size: None,
            id: None,
            sharing: None,
            required: false,
            env: None,
            mode: None,
            uid: None,
            gid: None,
        };
        let mut ro_given = None;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut deferred: Vec<&'static str> = Vec::new();
        for field in csv_fields(text)? {
            let (key, raw) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
                None => (field.to_ascii_lowercase(), None),
            };
            let canonical = canonical_key(&key);
            let Some(raw) = raw else {
                match canonical {
                    Some("readonly") => ro_given = Some(true),
                    Some("readwrite") => ro_given = Some(false),
                    Some("required") => m.required = true,
                    _ => {
                        return Err(MountError::new(
                            format!("invalid field '{field}' must be a key=value pair"),
                            format!("write `{key}=VALUE`"),
                        ));
                    }
                }
                seen.extend(canonical);
                continue;
            };
            let Some(canonical) = canonical else {
                return Err(unknown_key(&key, &field));
            };
            seen.push(canonical);
            let Some(v) = value(canonical, raw)? else {
                deferred.push(canonical);
                continue;
            };
            m.set(canonical, &key, v, &mut ro_given)?;
        }
        m.readonly = ro_given.unwrap_or(!matches!(m.kind, MountType::Cache | MountType::Tmpfs));
        if !deferred.contains(&"type") {
            m.check_fields(&seen, &deferred, ro_given)?;
        }
        Ok(m)
    }

    /// Sets field `key` (canonical name; `written` as in the text) to `v`.
    fn set(
        &mut self,
        key: &str,
        written: &str,
        v: String,
        ro_given: &mut Option<bool>,
    ) -> Result<(), MountError> {
        let bad = |what: &str| {
            MountError::new(format!("invalid value for {written}: {v}"), what.to_owned())
        };
        match key {
            "type" => self.kind = parse_type(&v)?,
            "from" => self.from = Some(v),
            "source" => self.source = Some(v),
            "target" => self.target = Some(v),
            "readonly" | "readwrite" => {
                let b = parse_bool(&v).ok_or_else(|| bad("write true or false"))?;
                *ro_given = Some(if key == "readonly" { b } else { !b });
            }
            "required" => {
                self.required = parse_bool(&v).ok_or_else(|| bad("write true or false"))?;
            }
            "size" => {
                let size = ram_in_bytes(&v).ok_or_else(|| bad("a size such as 64m or 1g"))?;
                self.size = Some(size);
            }
            "id" => self.id = Some(v),
            "sharing" => self.sharing = Some(parse_sharing(&v)?),
            "mode" => {
                let mode = u32::from_str_radix(&v, 8).ok().filter(|m| *m <= 0o7777);
                self.mode = Some(mode.ok_or_else(|| {
                    MountError::new(
                        format!("invalid value {v} for mode"),
                        "an octal mode such as 0755",
                    )
                })?);
            }
            "uid" => self.uid = Some(parse_id(key, &v)?),
            "gid" => self.gid = Some(parse_id(key, &v)?),
            "env" => self.env = Some(v),
            _ => unreachable!("canonical_key returns only these"),
        }
        Ok(())
    }

    /// The options each type takes (BuildKit's checks, and ours where BuildKit ignores).
    /// `deferred`: keys whose value is known only at the step (they count as given).
    fn check_fields(
        &self,
        seen: &[&str],
        deferred: &[&str],
        ro_given: Option<bool>,
    ) -> Result<(), MountError> {
        use MountType::{Bind, Cache, Secret, Ssh, Tmpfs};
        let kind = self.kind;
        for key in seen {
            let allowed: &[MountType] = match *key {
                "type" | "target" => &[Bind, Cache, Tmpfs, Secret, Ssh],
                "from" => &[Bind, Cache],
                "source" => &[Bind, Cache, Secret],
                "readonly" | "readwrite" => &[Bind, Cache, Tmpfs, Secret],
                "id" | "mode" | "uid" | "gid" => &[Cache, Secret, Ssh],
                "required" => &[Secret, Ssh],
                "size" => &[Tmpfs],
                "sharing" => &[Cache],
                "env" => &[Secret],
                _ => &[],
            };
            if !allowed.contains(&kind) {
                return Err(MountError::new(
                    format!("unexpected key '{key}' for mount type '{}'", kind.name()),
                    what_takes(key),
                ));
            }
        }
        if kind == Secret {
            self.check_secret(deferred, ro_given)?;
        } else if kind != Ssh
            && self.target.as_deref().is_none_or(str::is_empty)
            && !deferred.contains(&"target")
        {
            return Err(MountError::new(
                format!("a {} mount needs a target", kind.name()),
                "give where the command sees it: `target=/path`",
            ));
        }
        Ok(())
    }
}

impl MountSpec {
    /// A secret's own rules (BuildKit's): read-only, named by `id` or `source`.
    fn check_secret(&self, deferred: &[&str], ro_given: Option<bool>) -> Result<(), MountError> {
        if ro_given == Some(false) {
            return Err(MountError::new(
                "secret mounts are always read-only",
                "remove `rw`",
            ));
        }
        let given = |key: &str, v: &Option<String>| v.is_some() || deferred.contains(&key);
        if given("source", &self.source) && given("id", &self.id) {
            return Err(MountError::new(
                "both source and id can't be set",
                "give `id=`",
            ));
        }
        if !given("source", &self.source)
            && !given("target", &self.target)
            && !given("id", &self.id)
        {
            return Err(MountError::new(
                "invalid secret mount. one of source, target required",
                "write `--mount=type=secret,id=NAME` (the file is /run/secrets/NAME)",
            ));
        }
        Ok(())
    }
}

fn parse_type(v: &str) -> Result<MountType, MountError> {
    let lower = v.to_ascii_lowercase();
    let found = MountType::ALL.iter().find(|(n, _)| *n == lower);
    found.map(|(_, t)| *t).ok_or_else(|| {
        let names: Vec<&str> = MountType::ALL.iter().map(|(n, _)| *n).collect();
        MountError::new(
            format!("unsupported mount type \"{v}\""),
            suggestion(
                &lower,
                &names,
                "the types are bind, cache, tmpfs, secret and ssh",
            ),
        )
    })
}

fn parse_sharing(v: &str) -> Result<Sharing, MountError> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "shared" => Sharing::Shared,
        "private" => Sharing::Private,
        "locked" => Sharing::Locked,
        other => {
            return Err(MountError::new(
                format!("unsupported sharing value \"{v}\""),
                suggestion(
                    other,
                    &["shared", "private", "locked"],
                    "sharing is shared, private or locked",
                ),
            ));
        }
    })
}

/// A `uid` or `gid`.
fn parse_id(key: &str, v: &str) -> Result<u32, MountError> {
    v.parse::<u32>().map_err(|_| {
        MountError::new(
            format!("invalid value {v} for {key}"),
            "a number such as 1000",
        )
    })
}

impl fmt::Display for MountSpec {
    /// A canonical text of the spec (its part of a step's cache key): no secret values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type={} from={:?} source={:?} target={:?} ro={} size={:?} id={:?} sharing={:?} \
             required={} env={:?} mode={:?} uid={:?} gid={:?}",
            self.kind.name(),
            self.from,
            self.source,
            self.target,
            self.readonly,
            self.size,
            self.id,
            self.sharing,
            self.required,
            self.env,
            self.mode,
            self.uid,
            self.gid
        )
    }
}

/// The canonical name of a key and its aliases.
fn canonical_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "type" => "type",
        "from" => "from",
        "source" | "src" => "source",
        "target" | "dst" | "destination" => "target",
        "readonly" | "ro" => "readonly",
        "readwrite" | "rw" => "readwrite",
        "id" => "id",
        "sharing" => "sharing",
        "required" => "required",
        "size" => "size",
        "mode" => "mode",
        "uid" => "uid",
        "gid" => "gid",
        "env" => "env",
        _ => return None,
    })
}

fn unknown_key(key: &str, field: &str) -> MountError {
    MountError::new(
        format!("unexpected key '{key}' in '{field}'"),
        suggestion(
            key,
            KEYS,
            "the keys are type, from, source, target, ro, rw, id, sharing, required, size, mode, uid, gid and env",
        ),
    )
}

/// "did you mean X?" when `word` is close to one of `names`, else `otherwise`.
fn suggestion(word: &str, names: &[&str], otherwise: &str) -> String {
    match super::error::suggest(word, names) {
        Some(s) => format!("did you mean {s}?"),
        None => otherwise.to_owned(),
    }
}

/// Which types take `key`, for the hint of a misplaced option.
fn what_takes(key: &str) -> String {
    match key {
        "from" => "from= is for bind and cache mounts".into(),
        "source" => "source= is for bind, cache and secret mounts".into(),
        "readonly" | "readwrite" => "ro/rw are for bind, cache and tmpfs mounts".into(),
        "id" => "id= names a cache or a secret; a bind mount takes source= (and from=)".into(),
        "mode" | "uid" | "gid" => format!("{key}= is for cache and secret mounts"),
        "required" => "required is for secret mounts".into(),
        "size" => "size= is for tmpfs mounts".into(),
        "sharing" => "sharing= is for cache mounts".into(),
        "env" => "env= is for secret mounts".into(),
        _ => String::new(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// go-units' `RAMInBytes`: a number with an optional binary unit (`64m`, `1.5g`, `512kb`,
/// `100`), case-insensitive.
fn ram_in_bytes(v: &str) -> Option<u64> {
    let lower = v.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    (num >= 0.0).then_some((num * scale as f64) as u64)
}

/// Go's CSV fields (`encoding/csv`, one record): a field starting with `"` is quoted, `""`
/// in it is a quote.
fn csv_fields(text: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::new(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field",
                            "close the quote: `\"source=a,b\"`",
                        ));
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err(MountError::new(
                    "failed to parse csv mounts: extraneous or missing \" in quoted-field",
                    "quote the whole field: `\"source=a,b\"`",
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            break;
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<MountSpec, MountError> {
        MountSpec::parse(s, &Vec::<(String, String)>::new(), '\\')
    }

    #[test]
    fn defaults_and_aliases() {
        let m = p("type=cache,target=/root/.cache").unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Cache, false));
        let m = p("target=/src").unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Bind, true));
        let m = p("type=bind,src=a,dst=/b,rw").unwrap();
        assert_eq!(
            (m.source.as_deref(), m.target.as_deref(), m.readonly),
            (Some("a"), Some("/b"), false)
        );
        let m = p("type=tmpfs,destination=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = p("type=secret,id=tok,env=TOKEN,required,mode=0440,uid=1,gid=2").unwrap();
        assert_eq!(
            (m.required, m.mode, m.uid, m.gid),
            (true, Some(0o440), Some(1), Some(2))
        );
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert_eq!(p("type=ssh").unwrap().kind, MountType::Ssh);
        let m = p("type=cache,target=/c,sharing=LOCKED,readonly=true").unwrap();
        assert_eq!((m.sharing, m.readonly), (Some(Sharing::Locked), true));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s| p(s).unwrap_err();
        assert_eq!(
            e("type=cahce,target=/x").hint.as_deref(),
            Some("did you mean cache?")
        );
        assert_eq!(
            e("type=cache,target=/x,sharing=lock").message,
            "unsupported sharing value \"lock\""
        );
        assert!(
            e("type=cache,traget=/x")
                .message
                .contains("unexpected key 'traget'")
        );
        assert_eq!(
            e("type=cache,traget=/x").hint.as_deref(),
            Some("did you mean target?")
        );
        assert!(
            e("type=bind,target=/x,id=a")
                .message
                .contains("'id' for mount type 'bind'")
        );
        assert!(
            e("type=tmpfs,target=/x,mode=0755")
                .message
                .contains("'mode'")
        );
        assert!(e("type=bind,target=/x,size=1m").message.contains("'size'"));
        assert!(
            e("type=cache,target=/x,required")
                .message
                .contains("'required'")
        );
        assert!(e("type=secret,id=a,rw").message.contains("read-only"));
        assert!(e("type=secret").message.contains("one of source, target"));
        assert!(
            e("type=secret,id=a,source=b")
                .message
                .contains("both source and id")
        );
        assert!(e("type=cache").message.contains("needs a target"));
        assert!(e("type=cache,target=/x,mode=999").message.contains("mode"));
        assert!(e("type=cache,target=/x,uid=-1").message.contains("uid"));
        assert!(e("type=tmpfs,target=/x,size=lots").message.contains("size"));
        assert!(e("type=cache,target=/x,foo").message.contains("key=value"));
        assert!(e("\"type=cache,target=/x").message.contains("csv"));
    }

    #[test]
    fn values_are_expanded_but_not_checked_early() {
        let vars = vec![("T".to_owned(), "/cache".to_owned())];
        let m = MountSpec::parse("type=cache,target=$T,id=${T}-x", &vars, '\\').unwrap();
        assert_eq!(
            (m.target.as_deref(), m.id.as_deref()),
            (Some("/cache"), Some("/cache-x"))
        );
        // As written, a variable target is left to the step...
        assert!(MountSpec::check_static("type=cache,target=$T").is_ok());
        assert!(MountSpec::check_static("type=$KIND,target=/x,size=1m").is_ok());
        assert!(MountSpec::check_static("type=secret,id=$ID").is_ok());
        assert!(MountSpec::check_static("type=cache,target=/x,size=$S").is_err());
        assert!(MountSpec::check_static("type=tmpfs,target=/t,size=$S").is_ok());
        // ...but `from` is never expanded.
        let e = MountSpec::check_static("type=bind,from=$STAGE,target=/x").unwrap_err();
        assert!(e.message.contains("doesn't support variable expansion"));
    }

    #[test]
    fn csv_and_sizes() {
        assert_eq!(
            csv_fields("a,\"b,c\",\"d\"\"e\"").unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert_eq!(csv_fields("").unwrap(), [""]);
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("2GiB"), Some(2 << 30));
        assert_eq!(ram_in_bytes("1x"), None);
    }
}
