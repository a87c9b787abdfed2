//! apk-tools 2.14's command line (`src/apk.c`, `app_*.c`): the applet is the first word
//! that names one, options may come before or after it (getopt permutes), long options may
//! be abbreviated to a unique prefix, short ones bundled (`-Uq`, `-Xurl`). Each applet
//! accepts its option groups only. An option apk knows but we do not carry out is an error
//! naming it, never ignored.

use std::fmt;

/// The verbs we carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applet {
    Add,
    Del,
    Update,
    Info,
    Search,
    Version,
}

/// apk's applets we do not carry out (named in the error).
const OTHER_APPLETS: &[&str] = &[
    "audit", "cache", "dot", "fetch", "fix", "index", "list", "manifest", "policy", "stats",
    "upgrade", "verify",
];

impl Applet {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "add" => Self::Add,
            "del" => Self::Del,
            "update" => Self::Update,
            "info" => Self::Info,
            "search" => Self::Search,
            "version" => Self::Version,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Del => "del",
            Self::Update => "update",
            Self::Info => "info",
            Self::Search => "search",
            Self::Version => "version",
        }
    }

    fn groups(self) -> &'static [Group] {
        match self {
            Self::Add => &[Group::Global, Group::Commit, Group::Add],
            Self::Del => &[Group::Global, Group::Commit, Group::Del],
            Self::Update => &[Group::Global],
            Self::Info => &[Group::Global, Group::Source, Group::Info],
            Self::Search => &[Group::Global, Group::Source, Group::Search],
            Self::Version => &[Group::Global, Group::Version],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Global,
    Commit,
    Source,
    Add,
    Del,
    Info,
    Search,
    Version,
}

/// One option of apk-tools: its long name, short letters, whether it takes a value, and
/// whether we carry it out.
struct Opt {
    long: &'static str,
    short: &'static str,
    arg: bool,
    group: Group,
    supported: bool,
}

const fn opt(group: Group, long: &'static str, short: &'static str, arg: bool) -> Opt {
    Opt {
        long,
        short,
        arg,
        group,
        supported: true,
    }
}

const fn unsupported(group: Group, long: &'static str, short: &'static str, arg: bool) -> Opt {
    Opt {
        long,
        short,
        arg,
        group,
        supported: false,
    }
}

use Group as G;

#[rustfmt::skip]
const OPTIONS: &[Opt] = &[
    opt(G::Global, "allow-untrusted", "", false),
    opt(G::Global, "arch", "", true),
    opt(G::Global, "cache-dir", "", true),
    unsupported(G::Global, "cache-max-age", "", true),
    unsupported(G::Global, "force", "f", false),
    unsupported(G::Global, "force-binary-stdout", "", false),
    unsupported(G::Global, "force-broken-world", "", false),
    unsupported(G::Global, "force-missing-repositories", "", false),
    unsupported(G::Global, "force-non-repository", "", false),
    unsupported(G::Global, "force-old-apk", "", false),
    unsupported(G::Global, "force-overwrite", "", false),
    opt(G::Global, "force-refresh", "", false),
    opt(G::Global, "help", "h", false),
    unsupported(G::Global, "interactive", "i", false),
    opt(G::Global, "keys-dir", "", true),
    opt(G::Global, "no-cache", "", false),
    unsupported(G::Global, "no-check-certificate", "", false),
    opt(G::Global, "no-interactive", "", false),
    unsupported(G::Global, "no-network", "", false),
    opt(G::Global, "no-progress", "", false),
    opt(G::Global, "print-arch", "", false),
    opt(G::Global, "progress", "", false),
    unsupported(G::Global, "progress-fd", "", true),
    opt(G::Global, "purge", "", false),
    opt(G::Global, "quiet", "q", false),
    opt(G::Global, "repositories-file", "", true),
    opt(G::Global, "repository", "X", true),
    opt(G::Global, "root", "p", true),
    unsupported(G::Global, "timeout", "", true),
    opt(G::Global, "update-cache", "U", false),
    opt(G::Global, "verbose", "v", false),
    opt(G::Global, "version", "V", false),
    opt(G::Global, "wait", "", true),
    unsupported(G::Commit, "clean-protected", "", false),
    unsupported(G::Commit, "initramfs-diskless-boot", "", false),
    opt(G::Commit, "no-commit-hooks", "", false),
    opt(G::Commit, "no-scripts", "", false),
    unsupported(G::Commit, "overlay-from-stdin", "", false),
    unsupported(G::Commit, "simulate", "s", false),
    unsupported(G::Source, "from", "", true),
    opt(G::Add, "initdb", "", false),
    opt(G::Add, "latest", "l", false),
    opt(G::Add, "no-chown", "", false),
    opt(G::Add, "upgrade", "u", false),
    opt(G::Add, "virtual", "t", true),
    opt(G::Del, "rdepends", "r", false),
    opt(G::Info, "all", "a", false),
    opt(G::Info, "contents", "L", false),
    opt(G::Info, "depends", "R", false),
    opt(G::Info, "description", "d", false),
    opt(G::Info, "install-if", "", false),
    opt(G::Info, "installed", "e", false),
    opt(G::Info, "license", "", false),
    opt(G::Info, "provides", "P", false),
    opt(G::Info, "rdepends", "r", false),
    opt(G::Info, "replaces", "", false),
    opt(G::Info, "rinstall-if", "", false),
    opt(G::Info, "size", "s", false),
    opt(G::Info, "triggers", "t", false),
    opt(G::Info, "webpage", "w", false),
    opt(G::Info, "who-owns", "W", false),
    opt(G::Search, "all", "a", false),
    opt(G::Search, "description", "d", false),
    opt(G::Search, "exact", "ex", false),
    opt(G::Search, "has-origin", "", false),
    opt(G::Search, "origin", "o", false),
    opt(G::Search, "rdepends", "r", false),
    opt(G::Version, "all", "a", false),
    opt(G::Version, "check", "c", false),
    opt(G::Version, "indexes", "I", false),
    opt(G::Version, "limit", "l", true),
    opt(G::Version, "test", "t", false),
];

/// A parsed command line: the applet, its options (by long name, in order, with values)
/// and the remaining arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub applet: Applet,
    pub options: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
}

impl Args {
    /// Whether `--long` was given.
    pub fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(l, _)| *l == long)
    }

    /// How often `--long` was given (`-vv`).
    pub fn count(&self, long: &str) -> i32 {
        self.options.iter().filter(|(l, _)| *l == long).count() as i32
    }

    /// The last value of `--long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of `--long`, in order.
    pub fn values(&self, long: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(l, _)| *l == long)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    /// apk's verbosity: 1, plus one per `-v`, minus one per `-q`.
    pub fn verbosity(&self) -> i32 {
        1 + self.count("verbose") - self.count("quiet")
    }
}

/// Why a command line is not carried out; the text is what apk (or we) print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `-V`, `--print-arch`, `-h`: print this and succeed.
    Print(String),
    /// A usage error (exit 1).
    Usage(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Print(s) | Self::Usage(s) => f.write_str(s),
        }
    }
}

/// Parses the arguments after `apk`.
pub fn parse(words: &[String]) -> Result<Args, ArgsError> {
    let applet = deduce_applet(words)?;
    let groups = applet.groups();
    let mut options = Vec::new();
    let mut args = Vec::new();
    let mut iter = words.iter();
    while let Some(w) = iter.next() {
        if w == "--" {
            args.extend(iter.by_ref().cloned());
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            options.push(long_option(long, groups, &mut iter)?);
        } else if w.len() > 1 && w.starts_with('-') {
            options.extend(short_options(&w[1..], groups, &mut iter)?);
        } else {
            args.push(w.clone());
        }
    }
    // The applet's own word goes; later ones are arguments (`apk add add`).
    if args.first().map(String::as_str) == Some(applet.name()) {
        args.remove(0);
    }
    let parsed = Args {
        applet,
        options,
        args,
    };
    check_unsupported(&parsed, groups)?;
    printing_options(&parsed)?;
    Ok(parsed)
}

/// As apk's `deduce_applet`: the first word not starting with `-` that names an applet.
fn deduce_applet(words: &[String]) -> Result<Applet, ArgsError> {
    for w in words.iter().filter(|w| !w.starts_with('-')) {
        if let Some(a) = Applet::parse(w) {
            return Ok(a);
        }
        if OTHER_APPLETS.contains(&w.as_str()) {
            return Err(ArgsError::Usage(format!(
                "ERROR: apk {w} is not supported by the apk assemble provides in images without \
                 apk-tools (it carries out add, del, update, info, search and version); install \
                 apk-tools in the image (`RUN apk add apk-tools`) to use apk {w}\n"
            )));
        }
    }
    if words.iter().any(|w| w == "-V" || w == "--version") {
        return Err(ArgsError::Print(version()));
    }
    if words.iter().any(|w| w == "--print-arch") {
        return Err(ArgsError::Print(format!("{}\n", apk::install::host_arch())));
    }
    match words.iter().find(|w| !w.starts_with('-')) {
        Some(w) => Err(ArgsError::Usage(format!(
            "ERROR: '{w}' is not an apk command. See 'apk --help'.\n"
        ))),
        None => Err(ArgsError::Usage(usage())),
    }
}

fn long_option(
    text: &str,
    groups: &[Group],
    rest: &mut std::slice::Iter<'_, String>,
) -> Result<(&'static str, Option<String>), ArgsError> {
    let (name, inline) = match text.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (text, None),
    };
    let applicable = || OPTIONS.iter().filter(|o| groups.contains(&o.group));
    let exact: Vec<&Opt> = applicable().filter(|o| o.long == name).collect();
    let found = if exact.is_empty() {
        applicable().filter(|o| o.long.starts_with(name)).collect()
    } else {
        exact
    };
    let o = match found.as_slice() {
        [o] => *o,
        [] => return Err(unrecognized(&format!("--{name}"))),
        _ => {
            return Err(ArgsError::Usage(format!(
                "apk: option '--{name}' is ambiguous\n"
            )));
        }
    };
    let value = match (o.arg, inline) {
        (true, Some(v)) => Some(v),
        (true, None) => Some(rest.next().cloned().ok_or_else(|| needs_value(o.long))?),
        (false, Some(_)) => {
            return Err(ArgsError::Usage(format!(
                "apk: option '--{}' doesn't allow an argument\n",
                o.long
            )));
        }
        (false, None) => None,
    };
    Ok((o.long, value))
}

fn short_options(
    cluster: &str,
    groups: &[Group],
    rest: &mut std::slice::Iter<'_, String>,
) -> Result<Vec<(&'static str, Option<String>)>, ArgsError> {
    let mut out = Vec::new();
    for (i, c) in cluster.char_indices() {
        let o = OPTIONS
            .iter()
            .find(|o| groups.contains(&o.group) && o.short.contains(c))
            .ok_or_else(|| unrecognized(&format!("-{c}")))?;
        if !o.arg {
            out.push((o.long, None));
            continue;
        }
        let tail = &cluster[i + c.len_utf8()..];
        let value = if tail.is_empty() {
            rest.next().cloned().ok_or_else(|| needs_value(o.long))?
        } else {
            tail.to_owned()
        };
        out.push((o.long, Some(value)));
        break;
    }
    Ok(out)
}

fn unrecognized(option: &str) -> ArgsError {
    ArgsError::Usage(format!(
        "apk: unrecognized option '{option}'\nSee 'apk --help' for the options of each command.\n"
    ))
}

fn needs_value(long: &str) -> ArgsError {
    ArgsError::Usage(format!("apk: option '--{long}' requires an argument\n"))
}

/// An option apk knows but we do not carry out: an error naming it.
fn check_unsupported(args: &Args, groups: &[Group]) -> Result<(), ArgsError> {
    let Some(o) = args.options.iter().find_map(|(long, _)| {
        OPTIONS
            .iter()
            .find(|o| o.long == *long && groups.contains(&o.group) && !o.supported)
    }) else {
        return Ok(());
    };
    Err(ArgsError::Usage(format!(
        "ERROR: apk {}: option --{} is not supported by the apk assemble provides in images \
         without apk-tools; leave it out, or install apk-tools in the image (`RUN apk add \
         apk-tools`) to use it\n",
        args.applet.name(),
        o.long
    )))
}

/// `--help`, `--version`, `--print-arch`: print and stop, as apk does.
fn printing_options(args: &Args) -> Result<(), ArgsError> {
    if args.has("help") {
        return Err(ArgsError::Print(usage()));
    }
    if args.has("version") {
        return Err(ArgsError::Print(version()));
    }
    if args.has("print-arch") {
        return Err(ArgsError::Print(format!("{}\n", apk::install::host_arch())));
    }
    Ok(())
}

fn version() -> String {
    format!(
        "apk-tools 2.14.10, compiled for {}.\n",
        apk::install::host_arch()
    )
}

fn usage() -> String {
    "apk-tools 2.14.10 (as provided by assemble in images without apk-tools)\n\n\
     usage: apk [<OPTIONS>...] COMMAND [<ARGUMENTS>...]\n\n\
     Commands carried out here:\n  \
     add      Add packages to WORLD and commit changes\n  \
     del      Remove packages from WORLD and commit changes\n  \
     update   Update repository indexes\n  \
     info     Give detailed information about packages or repositories\n  \
     search   Search for packages by name or description\n  \
     version  Compare package versions\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Args, ArgsError> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&words)
    }

    #[test]
    fn options_before_and_after_the_applet_bundled_and_abbreviated() {
        let a = p("-X /repo --no-cache add -Uq --keys-dir=/k -t .deps a b").unwrap();
        assert_eq!(a.applet, Applet::Add);
        assert_eq!(a.args, ["a", "b"]);
        assert_eq!(a.values("repository"), ["/repo"]);
        assert!(a.has("no-cache") && a.has("update-cache"));
        assert_eq!(a.verbosity(), 0);
        assert_eq!(a.value("keys-dir"), Some("/k"));
        assert_eq!(a.value("virtual"), Some(".deps"));
        let a = p("add -X/r --no-scr x").unwrap();
        assert_eq!(a.values("repository"), ["/r"]);
        assert!(a.has("no-scripts"));
        let a = p("info -vv -L busybox").unwrap();
        assert_eq!((a.verbosity(), a.has("contents")), (3, true));
        let a = p("search -x busybox").unwrap();
        assert!(a.has("exact"));
    }

    #[test]
    fn unknown_unsupported_and_foreign_options_are_errors_naming_them() {
        let e = p("add --force-overwrite x").unwrap_err().to_string();
        assert!(
            e.contains("--force-overwrite") && e.contains("not supported"),
            "{e}"
        );
        let e = p("add --bogus x").unwrap_err().to_string();
        assert!(e.contains("unrecognized option '--bogus'"), "{e}");
        // An option of another applet.
        let e = p("info --no-scripts x").unwrap_err().to_string();
        assert!(e.contains("unrecognized"), "{e}");
        let e = p("upgrade").unwrap_err().to_string();
        assert!(e.contains("apk upgrade is not supported"), "{e}");
        let e = p("frobnicate").unwrap_err().to_string();
        assert!(e.contains("'frobnicate' is not an apk command"), "{e}");
        let e = p("add -X").unwrap_err().to_string();
        assert!(e.contains("requires an argument"), "{e}");
        assert!(matches!(p("--version"), Err(ArgsError::Print(_))));
        assert!(matches!(p("add --no"), Err(ArgsError::Usage(_))));
    }
}
