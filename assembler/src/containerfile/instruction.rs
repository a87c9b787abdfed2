//! Logical line → typed [`Instruction`]: flags, exec vs shell form, and each
//! instruction's argument syntax (buildkit's `instructions/parse.go` and
//! `parser/line_parsers.go`).

use std::path::Path;
use std::time::Duration;

use super::error::{ParseError, ParseErrorKind, suggest};
use super::lexer::{RawInstruction, dequote, heredoc_words, raw_words};
use super::{
    Arg, CommandForm, Flag, Healthcheck, HealthcheckCmd, INSTRUCTIONS, Instruction, Kind, Span,
};

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    /// `--name=value`, once.
    String,
    /// `--name=value`, any number of times.
    Repeated,
    /// `--name`, `--name=true`, `--name=false`.
    Bool,
}

/// The flags each instruction takes (buildkit's `instructions/parse.go`).
fn allowed_flags(instruction: &str) -> &'static [(&'static str, FlagType)] {
    use FlagType::{Bool, Repeated, String};
    match instruction {
        "FROM" => &[("platform", String)],
        "RUN" => &[
            ("mount", Repeated),
            ("network", String),
            ("security", String),
        ],
        "COPY" => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Repeated),
        ],
        "ADD" => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("checksum", String),
            ("keep-git-dir", Bool),
            ("exclude", Repeated),
            ("unpack", Bool),
        ],
        "HEALTHCHECK" => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// Context for building one instruction's errors.
struct Ctx<'a> {
    raw: &'a RawInstruction,
    path: &'a Path,
    name: &'static str,
    escape: char,
}

impl Ctx<'_> {
    fn err(&self, kind: ParseErrorKind, offset: usize, message: String, hint: &str) -> ParseError {
        let hint = (!hint.is_empty()).then(|| hint.to_owned());
        self.raw.error(self.path, kind, offset, message, hint)
    }

    fn missing(&self, hint: &str) -> ParseError {
        self.err(
            ParseErrorKind::MissingArguments {
                instruction: self.name.to_owned(),
            },
            self.raw.logical.len(),
            format!("{} needs arguments", self.name),
            hint,
        )
    }

    fn bad(&self, offset: usize, message: String, hint: &str) -> ParseError {
        self.err(
            ParseErrorKind::BadArguments {
                instruction: self.name.to_owned(),
            },
            offset,
            message,
            hint,
        )
    }

    fn bad_json(&self, offset: usize, message: String, hint: &str) -> ParseError {
        self.err(
            ParseErrorKind::BadJson {
                instruction: self.name.to_owned(),
            },
            offset,
            message,
            hint,
        )
    }
}

/// Parse one logical line into an instruction.
pub(crate) fn build(
    raw: &RawInstruction,
    escape: char,
    path: &Path,
    notes: &mut Vec<String>,
) -> Result<Instruction, ParseError> {
    let name = known_instruction(raw, path)?;
    let cx = Ctx {
        raw,
        path,
        name,
        escape,
    };
    let (flags, flag_at, rest_offset) = if name == "ONBUILD" {
        (Vec::new(), Vec::new(), raw.args_start)
    } else {
        parse_flags(&cx, raw.args_start)?
    };
    let rest = &raw.logical[rest_offset..];
    let kind = parse_kind(&cx, &flags, rest, rest_offset, notes)?;
    Ok(Instruction {
        kind,
        flags,
        span: Span {
            line: raw.line,
            column: raw.column,
            end_line: raw.end_line,
            text: raw.text.clone(),
            logical: raw.logical.clone(),
            flag_at,
        },
    })
}

/// The instruction `raw`'s keyword names, in upper case; an unknown one is an error
/// suggesting the nearest.
fn known_instruction(raw: &RawInstruction, path: &Path) -> Result<&'static str, ParseError> {
    let upper = raw.keyword.to_ascii_uppercase();
    if let Some(name) = INSTRUCTIONS.iter().copied().find(|i| *i == upper) {
        return Ok(name);
    }
    let suggestion = suggest(&raw.keyword, INSTRUCTIONS);
    let hint = match suggestion {
        Some(s) => format!("did you mean {s}?"),
        None => format!("known instructions: {}", INSTRUCTIONS.join(" ")),
    };
    Err(raw.error(
        path,
        ParseErrorKind::UnknownInstruction {
            name: raw.keyword.clone(),
            suggestion: suggestion.map(str::to_owned),
        },
        0,
        format!("unknown instruction `{}`", raw.keyword),
        Some(hint),
    ))
}

/// The arguments `rest` (at `rest_offset` of the logical line) of instruction `cx.name`.
fn parse_kind(
    cx: &Ctx<'_>,
    flags: &[Flag],
    rest: &str,
    rest_offset: usize,
    notes: &mut Vec<String>,
) -> Result<Kind, ParseError> {
    let name = cx.name;
    Ok(match name {
        "FROM" => parse_from(cx, rest, rest_offset)?,
        "RUN" => parse_run(cx, rest, rest_offset)?,
        "COPY" | "ADD" => parse_copy(cx, rest, rest_offset)?,
        "ENV" => Kind::Env(parse_name_val(cx, rest, rest_offset)?),
        "LABEL" => Kind::Label(parse_name_val(cx, rest, rest_offset)?),
        "ARG" => parse_arg(cx, rest, rest_offset)?,
        "MAINTAINER" => Kind::Maintainer(non_empty(cx, rest, "`MAINTAINER name <mail>`")?),
        "EXPOSE" => Kind::Expose(words_non_empty(cx, rest, "`EXPOSE 80 443/tcp`")?),
        "USER" => Kind::User(non_empty(
            cx,
            rest,
            "`USER name[:group]` or `USER 1000:1000`",
        )?),
        "WORKDIR" => Kind::Workdir(non_empty(cx, rest, "`WORKDIR /app`")?),
        "STOPSIGNAL" => Kind::StopSignal(non_empty(cx, rest, "`STOPSIGNAL SIGTERM`")?),
        "SHELL" => parse_shell(cx, rest, rest_offset)?,
        "ENTRYPOINT" => Kind::Entrypoint(parse_command(cx, rest, rest_offset)?),
        "CMD" => Kind::Cmd(parse_command(cx, rest, rest_offset)?),
        "VOLUME" => parse_volume(cx, rest, rest_offset)?,
        "HEALTHCHECK" => parse_healthcheck(cx, flags, rest, rest_offset)?,
        "ONBUILD" => parse_onbuild(cx, notes)?,
        _ => unreachable!("every INSTRUCTIONS entry is handled"),
    })
}

fn parse_run(cx: &Ctx<'_>, rest: &str, rest_offset: usize) -> Result<Kind, ParseError> {
    if rest.is_empty() {
        return Err(cx.missing("write the command to run: `RUN apk add curl`"));
    }
    Ok(Kind::Run {
        command: command_form(cx, rest, rest_offset)?,
        heredocs: cx.raw.heredocs.clone(),
    })
}

fn parse_arg(cx: &Ctx<'_>, rest: &str, rest_offset: usize) -> Result<Kind, ParseError> {
    let words = raw_words(rest, cx.escape);
    if words.is_empty() {
        return Err(cx.missing("declare a name: `ARG VERSION` or `ARG VERSION=1.0`"));
    }
    let mut args = Vec::new();
    for (s, e) in words {
        let word = &rest[s..e];
        let (n, default) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (word, None),
        };
        if n.is_empty() {
            return Err(cx.bad(
                rest_offset + s,
                "ARG names can not be blank".to_owned(),
                "write `ARG NAME=value`",
            ));
        }
        args.push(Arg::new(n, default));
    }
    Ok(Kind::Arg(args))
}

fn parse_shell(cx: &Ctx<'_>, rest: &str, rest_offset: usize) -> Result<Kind, ParseError> {
    match maybe_json(cx, rest, rest_offset)? {
        Some(v) if !v.is_empty() => Ok(Kind::Shell(v)),
        _ => Err(cx.bad_json(
            rest_offset,
            "SHELL requires the arguments to be in JSON form".to_owned(),
            "write `SHELL [\"/bin/sh\", \"-c\"]`",
        )),
    }
}

/// The command of ENTRYPOINT or CMD.
fn parse_command(cx: &Ctx<'_>, rest: &str, rest_offset: usize) -> Result<CommandForm, ParseError> {
    let name = cx.name;
    if rest.is_empty() {
        return Err(cx.missing(&format!(
            "write `{name} [\"executable\", \"arg\"]` or `{name} command args`"
        )));
    }
    command_form(cx, rest, rest_offset)
}

fn parse_volume(cx: &Ctx<'_>, rest: &str, rest_offset: usize) -> Result<Kind, ParseError> {
    let vols = match maybe_json(cx, rest, rest_offset)? {
        Some(v) => v,
        _ => words_non_empty(cx, rest, "`VOLUME /data` or `VOLUME [\"/data\"]`")?,
    };
    if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
        return Err(cx.bad(
            rest_offset,
            "VOLUME specified can not be an empty string".to_owned(),
            "name the mount point: `VOLUME /data`",
        ));
    }
    Ok(Kind::Volume(vols))
}

fn non_empty(cx: &Ctx<'_>, rest: &str, example: &str) -> Result<String, ParseError> {
    if rest.is_empty() {
        return Err(cx.missing(&format!("write {example}")));
    }
    Ok(rest.to_owned())
}

fn words_non_empty(cx: &Ctx<'_>, rest: &str, example: &str) -> Result<Vec<String>, ParseError> {
    let words: Vec<String> = raw_words(rest, cx.escape)
        .into_iter()
        .map(|(s, e)| rest[s..e].to_owned())
        .collect();
    if words.is_empty() {
        return Err(cx.missing(&format!("write {example}")));
    }
    Ok(words)
}

/// Leading `--name[=value]` words (buildkit's `extractBuilderFlags`: quotes removed,
/// `\` escapes, `--` ends the flags). Returns the flags, where each starts (see
/// [`super::Span::flag_at`]) and where the rest starts.
fn parse_flags(cx: &Ctx<'_>, start: usize) -> Result<Flags, ParseError> {
    let logical = &cx.raw.logical;
    let mut flags: Vec<Flag> = Vec::new();
    let mut flag_at = Vec::new();
    let mut pos = start;
    for (s, e) in raw_words(&logical[start..], cx.escape) {
        let (s, e) = (start + s, start + e);
        let word = &logical[s..e];
        if !word.starts_with("--") {
            return Ok((flags, flag_at, s));
        }
        pos = e;
        if word == "--" {
            break;
        }
        let word = dequote(word, '\\');
        let (fname, value) = match word[2..].split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (word[2..].to_owned(), None),
        };
        check_flag(cx, s, &fname, value.as_deref(), &flags)?;
        let (line, column) = cx.raw.position(s);
        flag_at.push((line - cx.raw.line, column));
        flags.push(Flag { name: fname, value });
    }
    Ok((flags, flag_at, skip_blanks(logical, pos)))
}

/// Refuses `--fname[=value]` (starting at `s`) where the instruction does not take it, its
/// value does not fit its type, or it may be given once and `flags` already has it.
fn check_flag(
    cx: &Ctx<'_>,
    s: usize,
    fname: &str,
    value: Option<&str>,
    flags: &[Flag],
) -> Result<(), ParseError> {
    let bad_flag = |message: String, hint: String| {
        cx.err(
            ParseErrorKind::BadFlag {
                instruction: cx.name.to_owned(),
                flag: fname.to_owned(),
            },
            s,
            message,
            &hint,
        )
    };
    let allowed = allowed_flags(cx.name);
    let Some(&(_, ty)) = allowed.iter().find(|(n, _)| *n == fname) else {
        let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
        return Err(bad_flag(
            format!("{} does not take --{fname}", cx.name),
            unknown_flag_hint(cx.name, fname, &names),
        ));
    };
    match (ty, value) {
        (FlagType::Bool, Some(v)) if v != "true" && v != "false" => Err(bad_flag(
            format!("--{fname} takes no value, got `{v}`"),
            format!("write `--{fname}` (or `--{fname}=false`)"),
        )),
        (FlagType::String | FlagType::Repeated, None) => Err(bad_flag(
            format!("missing a value on flag --{fname}"),
            format!("write `--{fname}=VALUE`"),
        )),
        (FlagType::String | FlagType::Bool, _) if flags.iter().any(|f| f.name == fname) => {
            Err(bad_flag(
                format!("duplicate flag specified: --{fname}"),
                "give the flag once".to_owned(),
            ))
        }
        _ => Ok(()),
    }
}

/// What to write instead of `--fname`: the closest flag `instruction` takes and all of
/// them (`names`), or that it takes none.
fn unknown_flag_hint(instruction: &str, fname: &str, names: &[&str]) -> String {
    let close = suggest(fname, names)
        .map(|n| format!("did you mean --{n}? "))
        .unwrap_or_default();
    if names.is_empty() {
        format!("{instruction} takes no flags; remove `--{fname}`")
    } else {
        format!(
            "{close}{instruction} takes {}",
            names
                .iter()
                .map(|n| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The flags, where they start, and where the rest of the line starts.
type Flags = (Vec<Flag>, Vec<(usize, usize)>, usize);

fn skip_blanks(s: &str, from: usize) -> usize {
    s[from..]
        .find(|c: char| !c.is_whitespace())
        .map_or(s.len(), |n| from + n)
}

/// The JSON form of an argument list (buildkit's `parseJSON`): `Ok(None)` when the
/// text is not JSON, so the caller falls back to the shell/whitespace form as Docker
/// does. Errors: a JSON array with non-string elements (Docker refuses it too), and text
/// starting with `["` that does not parse (Docker would silently fall back and run a
/// broken exec form through the shell; refusing it saves a confusing build failure).
fn maybe_json(cx: &Ctx<'_>, rest: &str, offset: usize) -> Result<Option<Vec<String>>, ParseError> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(cx.bad_json(
                    offset,
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_owned(),
                    "quote every element: [\"sleep\", \"10\"]",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Err(e) if rest.starts_with("[\"") => {
            let hint = if rest.ends_with(']') {
                "a JSON array of double-quoted strings: [\"executable\", \"arg\"]"
            } else {
                "missing `]` at the end of the JSON array: [\"executable\", \"arg\"]"
            };
            Err(cx.bad_json(offset, format!("invalid JSON array: {e}"), hint))
        }
        Err(_) => Ok(None),
    }
}

/// Exec form when the arguments are a JSON array of strings; shell form otherwise.
fn command_form(cx: &Ctx<'_>, rest: &str, offset: usize) -> Result<CommandForm, ParseError> {
    Ok(match maybe_json(cx, rest, offset)? {
        Some(v) => CommandForm::Exec(v),
        None => CommandForm::Shell(rest.to_owned()),
    })
}

fn parse_from(cx: &Ctx<'_>, rest: &str, offset: usize) -> Result<Kind, ParseError> {
    let words = raw_words(rest, cx.escape);
    let word = |i: usize| &rest[words[i].0..words[i].1];
    match words.len() {
        0 => Err(cx
            .missing("name the base image: `FROM alpine:3.20`, `FROM oci:DIR`, or `FROM scratch`")),
        1 => Ok(Kind::From {
            image: word(0).to_owned(),
            name: None,
        }),
        3 if word(1).eq_ignore_ascii_case("as") => {
            let name = word(2).to_ascii_lowercase();
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(cx.bad(
                    offset + words[2].0,
                    format!("invalid stage name `{}`", word(2)),
                    "stage names start with a letter and contain only letters, digits, `-`, `_` and `.`",
                ));
            }
            Ok(Kind::From {
                image: word(0).to_owned(),
                name: Some(name),
            })
        }
        _ => Err(cx.bad(
            offset + words.get(1).map_or(0, |w| w.0),
            "FROM takes `image [AS name]`".to_owned(),
            "write `FROM alpine:3.20 AS build`",
        )),
    }
}

fn parse_copy(cx: &Ctx<'_>, rest: &str, offset: usize) -> Result<Kind, ParseError> {
    let heredocs = cx.raw.heredocs.clone();
    let mut words: Vec<String> = match maybe_json(cx, rest, offset)? {
        Some(v) => v,
        None => {
            // Heredoc words (and the delimiter of `<< EOF`) are not sources.
            let here: Vec<usize> = heredoc_words(rest, cx.escape)
                .unwrap_or_default()
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            let mut skip_next = false;
            let mut out = Vec::new();
            for (s, e) in raw_words(rest, cx.escape) {
                let w = &rest[s..e];
                if std::mem::take(&mut skip_next) {
                    continue;
                }
                if here.contains(&s) {
                    skip_next = w.trim_start_matches(|c: char| c.is_ascii_digit()) == "<<"
                        || w.trim_start_matches(|c: char| c.is_ascii_digit()) == "<<-";
                    continue;
                }
                out.push(w.to_owned());
            }
            out
        }
    };
    if words.is_empty() || (words.len() < 2 && heredocs.is_empty()) {
        return Err(cx.missing(&format!(
            "{} needs at least one source and a destination: `{} src /dest`",
            cx.name, cx.name
        )));
    }
    let dest = words.pop().unwrap_or_default();
    Ok(if cx.name == "COPY" {
        Kind::Copy {
            sources: words,
            dest,
            heredocs,
        }
    } else {
        Kind::Add {
            sources: words,
            dest,
            heredocs,
        }
    })
}

/// `key=value…` or the legacy `key value` (ENV, LABEL): buildkit's `parseNameVal`.
fn parse_name_val(
    cx: &Ctx<'_>,
    rest: &str,
    offset: usize,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = raw_words(rest, cx.escape);
    let example = format!("`{} name=value`", cx.name);
    let Some(&(s0, e0)) = words.first() else {
        return Err(cx.missing(&format!("write {example}")));
    };
    let first = &rest[s0..e0];
    if !first.contains('=') {
        // Legacy `ENV key value with spaces`: the rest of the line is the value.
        if words.len() < 2 {
            return Err(cx.bad(
                offset + e0,
                format!("{} `{first}` has no value", cx.name),
                &format!("write {example}"),
            ));
        }
        return Ok(vec![(first.to_owned(), rest[e0..].trim().to_owned())]);
    }
    let mut pairs = Vec::new();
    for (s, e) in words {
        let word = &rest[s..e];
        let Some((k, v)) = word.split_once('=') else {
            return Err(cx.bad(
                offset + s,
                format!("can't find = in `{word}`: must be of the form name=value"),
                &format!("write {example}; quote values with spaces"),
            ));
        };
        if k.is_empty() {
            return Err(cx.bad(
                offset + s,
                format!("{} names can not be blank", cx.name),
                &format!("write {example}"),
            ));
        }
        pairs.push((k.to_owned(), v.to_owned()));
    }
    Ok(pairs)
}

fn parse_healthcheck(
    cx: &Ctx<'_>,
    flags: &[Flag],
    rest: &str,
    offset: usize,
) -> Result<Kind, ParseError> {
    let words = raw_words(rest, cx.escape);
    let Some(&(s0, e0)) = words.first() else {
        return Err(cx.missing("write `HEALTHCHECK CMD command` or `HEALTHCHECK NONE`"));
    };
    let kw = &rest[s0..e0];
    if kw.eq_ignore_ascii_case("NONE") {
        if words.len() > 1 || !flags.is_empty() {
            return Err(cx.bad(
                offset,
                "HEALTHCHECK NONE takes no arguments or flags".to_owned(),
                "write just `HEALTHCHECK NONE`",
            ));
        }
        return Ok(Kind::Healthcheck(Healthcheck::None));
    }
    if !kw.eq_ignore_ascii_case("CMD") {
        return Err(cx.bad(
            offset + s0,
            format!("unknown type `{kw}` in HEALTHCHECK"),
            "try `HEALTHCHECK CMD command` or `HEALTHCHECK NONE`",
        ));
    }
    let cmd_offset = skip_blanks(&cx.raw.logical, offset + e0);
    let cmd_text = &cx.raw.logical[cmd_offset..];
    if cmd_text.is_empty() {
        return Err(cx.missing("write the check command: `HEALTHCHECK CMD wget -q -O- localhost`"));
    }
    let command = command_form(cx, cmd_text, cmd_offset)?;
    let retries = healthcheck_retries(cx, flags)?;
    let duration = |name| healthcheck_duration(cx, flags, name);
    Ok(Kind::Healthcheck(Healthcheck::Check(HealthcheckCmd {
        command,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })))
}

/// HEALTHCHECK's last `--{name}` duration: none, zero, or at least 1ms.
fn healthcheck_duration(
    cx: &Ctx<'_>,
    flags: &[Flag],
    name: &str,
) -> Result<Option<Duration>, ParseError> {
    let Some(v) = flags.iter().rev().find(|f| f.name == name) else {
        return Ok(None);
    };
    let text = v.value.as_deref().unwrap_or("");
    match parse_go_duration(text) {
        Some(d) if d.is_zero() || d >= Duration::from_millis(1) => Ok(Some(d)),
        Some(_) => Err(cx.bad(
            cx.raw.args_start,
            format!("--{name} cannot be less than 1ms"),
            "use a value such as 30s",
        )),
        None => Err(cx.bad(
            cx.raw.args_start,
            format!("--{name}: invalid duration `{text}`"),
            "durations look like 30s, 1m30s, 500ms",
        )),
    }
}

/// HEALTHCHECK's last `--retries`, if any.
fn healthcheck_retries(cx: &Ctx<'_>, flags: &[Flag]) -> Result<Option<u32>, ParseError> {
    let Some(f) = flags.iter().rev().find(|f| f.name == "retries") else {
        return Ok(None);
    };
    let text = f.value.as_deref().unwrap_or("");
    match text.parse::<u32>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(cx.bad(
            cx.raw.args_start,
            format!("--retries: invalid number `{text}`"),
            "write --retries=3",
        )),
    }
}

/// Go's `time.ParseDuration` for non-negative values: `1h2m3.5s`, `300ms`, `0`.
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn parse_onbuild(cx: &Ctx<'_>, notes: &mut Vec<String>) -> Result<Kind, ParseError> {
    let raw = cx.raw;
    let Some(sub) = raw.sub(raw.args_start) else {
        return Err(cx.missing("write the trigger: `ONBUILD RUN make`"));
    };
    let upper = sub.keyword.to_ascii_uppercase();
    if matches!(upper.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(cx.bad(
            raw.args_start,
            format!("{upper} isn't allowed as an ONBUILD trigger"),
            "ONBUILD takes RUN, COPY, ENV…, not ONBUILD, FROM or MAINTAINER",
        ));
    }
    let inner = build(&sub, cx.escape, cx.path, notes)?;
    Ok(Kind::Onbuild(Box::new(inner)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("30s"), Some(Duration::from_secs(30)));
        assert_eq!(d("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("10us"), Some(Duration::from_micros(10)));
        assert_eq!(d("5"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("s"), None);
        assert_eq!(d("-1s"), None);
        assert_eq!(d("1d"), None);
    }
}
