//! Recognise a RUN that is only `apk add …` / `apk del …` (optionally after
//! `apk update &&`), so the engine can install natively instead of running a shell.
//!
//! Conservative on purpose: anything the shell would interpret beyond plain words, `&&` and
//! `$NAME`/`${NAME}` of variables the step defines (pipes, redirections such as an unquoted
//! `pkg>=1`, other expansions, globs, `;`, other commands, unknown apk options) gives
//! `None`, and the engine runs the command in the sandbox as written.
//!
//! Variables are expanded only where the shell's result is certain: the variable is set
//! (ENV or ARG of the step), and unquoted values hold no blanks or glob characters (which
//! the shell would split or match). So `ARG TAG=1.2-r0` + `RUN apk add app=$TAG`, the
//! form `ci/bump-containerfile` keeps up to date, installs natively.

use super::CommandForm;

/// What the apk command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApkAction {
    Add,
    Del,
    /// A lone `apk update`: refresh the indexes, install nothing.
    Update,
}

/// A recognised `apk` invocation, options gathered over an `apk update && apk add` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApkCommand {
    pub action: ApkAction,
    /// Dependency atoms as written (`curl`, `busybox=1.36.1-r0`, `musl>=1.2`).
    pub packages: Vec<String>,
    /// `--virtual NAME` / `-t NAME`: install under a virtual package of that name.
    pub virtual_name: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `-U`, `--update-cache`, or a preceding `apk update`.
    pub update: bool,
    /// `--repository URL` / `-X URL`, in order.
    pub repositories: Vec<String>,
    /// `--allow-untrusted`.
    pub allow_untrusted: bool,
    /// `--no-scripts`.
    pub no_scripts: bool,
    /// `-u`, `--upgrade`: upgrade the named packages if already installed.
    pub upgrade: bool,
    /// `-l`, `--latest`.
    pub latest: bool,
    /// `--keys-dir DIR`.
    pub keys_dir: Option<String>,
    /// `-q`/`--quiet`/`--no-progress` were given (output preference only).
    pub quiet: bool,
    /// The arguments after `apk` of each command, in order (`apk update && apk add x`
    /// gives two): what is carried out, one command after the other as `&&` would.
    pub commands: Vec<Vec<String>>,
}

impl ApkCommand {
    fn new(action: ApkAction) -> Self {
        Self {
            action,
            packages: Vec::new(),
            virtual_name: None,
            no_cache: false,
            update: false,
            repositories: Vec::new(),
            allow_untrusted: false,
            no_scripts: false,
            upgrade: false,
            latest: false,
            keys_dir: None,
            quiet: false,
            commands: Vec::new(),
        }
    }
}

/// `Some` when the RUN is exactly apk add/del/update commands joined by `&&`, with no
/// variables (see [`detect_apk_with`]).
pub fn detect_apk(run: &CommandForm) -> Option<ApkCommand> {
    detect_apk_with(run, &|_| None)
}

/// As [`detect_apk`], expanding `$NAME`/`${NAME}` in the shell form with `vars` (the
/// step's environment: ENV and ARG) as the shell would; an unset name gives `None`.
/// The exec form is not expanded (no shell, as in Docker).
pub fn detect_apk_with(
    run: &CommandForm,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Option<ApkCommand> {
    let commands = match run {
        CommandForm::Exec(words) => vec![words.clone()],
        CommandForm::Shell(text) => split_shell(text, vars)?,
    };
    let mut updates: Vec<ApkCommand> = Vec::new();
    let mut main: Option<ApkCommand> = None;
    let mut argv = Vec::new();
    for words in commands {
        let cmd = parse_apk(&words)?;
        argv.push(words[1..].to_vec());
        if cmd.action == ApkAction::Update {
            updates.push(cmd);
        } else if main.replace(cmd).is_some() {
            // Two installs/removals in one RUN: leave it to the shell.
            return None;
        }
    }
    let mut main = match main {
        Some(m) => m,
        None => updates.pop()?,
    };
    for u in &updates {
        merge_options(&mut main, u);
    }
    main.update |= main.action == ApkAction::Update;
    main.commands = argv;
    Some(main)
}

/// Options of an `apk update` carry over to the install it precedes (or vice versa).
fn merge_options(into: &mut ApkCommand, from: &ApkCommand) {
    into.no_cache |= from.no_cache;
    into.update |= from.update || from.action == ApkAction::Update;
    into.allow_untrusted |= from.allow_untrusted;
    into.quiet |= from.quiet;
    for r in &from.repositories {
        if !into.repositories.contains(r) {
            into.repositories.push(r.clone());
        }
    }
    if into.keys_dir.is_none() {
        into.keys_dir.clone_from(&from.keys_dir);
    }
}

fn parse_apk(words: &[String]) -> Option<ApkCommand> {
    let (program, args) = words.split_first()?;
    if !matches!(
        program.as_str(),
        "apk" | "/sbin/apk" | "/usr/sbin/apk" | "/bin/apk" | "/usr/bin/apk"
    ) {
        return None;
    }
    let mut cmd: Option<ApkCommand> = None;
    let mut opts = ApkCommand::new(ApkAction::Add);
    let mut packages = Vec::new();
    let mut iter = args.iter();
    let mut options_done = false;
    while let Some(w) = iter.next() {
        if options_done || !w.starts_with('-') || w == "-" {
            if cmd.is_none() {
                cmd = Some(ApkCommand::new(match w.as_str() {
                    "add" => ApkAction::Add,
                    "del" => ApkAction::Del,
                    "update" => ApkAction::Update,
                    _ => return None,
                }));
            } else {
                packages.push(w.clone());
            }
            continue;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if w.starts_with("--") => (n, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| iter.next().cloned());
        match name {
            "--" => options_done = true,
            "--no-cache" => opts.no_cache = true,
            "-U" | "--update-cache" => opts.update = true,
            "--virtual" | "-t" => opts.virtual_name = Some(value()?),
            "--repository" | "-X" => opts.repositories.push(value()?),
            "--allow-untrusted" => opts.allow_untrusted = true,
            "--no-scripts" => opts.no_scripts = true,
            "-u" | "--upgrade" => opts.upgrade = true,
            "-l" | "--latest" => opts.latest = true,
            "--keys-dir" => opts.keys_dir = Some(value()?),
            "-q" | "--quiet" | "--no-progress" => opts.quiet = true,
            "-v" | "--verbose" | "--progress" => {}
            short if short.len() > 2 && !short.starts_with("--") => {
                // Bundled short options such as `-Uq`.
                for c in short[1..].chars() {
                    match c {
                        'U' => opts.update = true,
                        'u' => opts.upgrade = true,
                        'l' => opts.latest = true,
                        'q' => opts.quiet = true,
                        'v' => {}
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    let mut cmd = cmd?;
    let action = cmd.action;
    opts.action = action;
    opts.packages = packages;
    cmd = opts;
    match action {
        ApkAction::Update if !cmd.packages.is_empty() => None,
        ApkAction::Add | ApkAction::Del if cmd.packages.is_empty() => None,
        ApkAction::Del | ApkAction::Update if cmd.virtual_name.is_some() || cmd.upgrade => None,
        _ => Some(cmd),
    }
}

/// `NAME` or `{NAME}` after a `$`: the variable's value, `None` for other expansions
/// (`${X:-y}`, `$1`, `$@`, …) or an unset name.
fn expand_var(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let braced = chars.next_if_eq(&'{').is_some();
    let mut name = String::new();
    while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
        name.push(c);
    }
    if braced && chars.next() != Some('}') {
        return None;
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    vars(&name)
}

/// Split a shell command into `&&`-joined simple commands of plain words; `None` for
/// anything else the shell would interpret.
fn split_shell(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Option<Vec<Vec<String>>> {
    let mut w = Words {
        commands: vec![Vec::new()],
        word: String::new(),
        in_word: false,
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => w.end_word(),
            '&' => {
                if chars.next() != Some('&') {
                    return None;
                }
                w.end_word();
                if w.commands.last()?.is_empty() {
                    return None;
                }
                w.commands.push(Vec::new());
            }
            '\'' => {
                w.in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.word.push(c),
                    }
                }
            }
            '"' => {
                w.in_word = true;
                double_quoted(&mut chars, vars, &mut w.word)?;
            }
            '\\' => {
                w.in_word = true;
                match chars.next()? {
                    '\n' => {}
                    c => w.word.push(c),
                }
            }
            '$' => {
                let value = unquoted_var(&mut chars, vars)?;
                w.in_word = true;
                w.word.push_str(&value);
            }
            '|' | ';' | '<' | '>' | '(' | ')' | '`' | '*' | '?' | '[' | ']' | '{' | '}' => {
                return None;
            }
            '#' | '~' | '!' if !w.in_word => return None,
            c => {
                w.in_word = true;
                w.word.push(c);
            }
        }
    }
    w.end_word();
    if w.commands.iter().any(Vec::is_empty) {
        return None;
    }
    Some(w.commands)
}

/// [`split_shell`]'s commands so far and the word being read.
struct Words {
    commands: Vec<Vec<String>>,
    word: String,
    in_word: bool,
}

impl Words {
    /// Ends the word being read (if any) as the last command's next word.
    fn end_word(&mut self) {
        if self.in_word {
            if let Some(command) = self.commands.last_mut() {
                command.push(std::mem::take(&mut self.word));
            }
            self.in_word = false;
        }
    }
}

/// The rest of a double-quoted string (after its opening `"`) onto `word`; `None` for a
/// command substitution, an escaped `$` or `` ` ``, or a missing closing quote.
fn double_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    vars: &dyn Fn(&str) -> Option<String>,
    word: &mut String,
) -> Option<()> {
    loop {
        match chars.next()? {
            '"' => return Some(()),
            // Inside double quotes the value is taken as it is.
            '$' => word.push_str(&expand_var(chars, vars)?),
            '`' => return None,
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => word.push(c),
                '$' | '`' => return None,
                c => {
                    word.push('\\');
                    word.push(c);
                }
            },
            c => word.push(c),
        }
    }
}

/// An unquoted `$VAR`'s value (after the `$`); `None` when the shell would do more with it.
fn unquoted_var(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let value = expand_var(chars, vars)?;
    // Unquoted, the shell would split blanks, match globs, or drop an empty
    // word: leave those to the shell.
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || "*?[]{}~\\'\"$`|&;<>()#".contains(c))
    {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_splitting() {
        let s = |t| split_shell(t, &|_| None);
        assert_eq!(
            s("apk update&&apk add 'a b' \"c\\\"d\" e\\ f"),
            Some(vec![
                vec!["apk".to_owned(), "update".to_owned()],
                vec![
                    "apk".to_owned(),
                    "add".to_owned(),
                    "a b".to_owned(),
                    "c\"d".to_owned(),
                    "e f".to_owned()
                ]
            ])
        );
        assert_eq!(s("a | b"), None);
        assert_eq!(s("a & b"), None);
        assert_eq!(s("a && && b"), None);
        assert_eq!(s("x~y"), Some(vec![vec!["x~y".to_owned()]]));
        assert_eq!(s("~x"), None);
        assert_eq!(s("apk add a=$V"), None);
    }

    #[test]
    fn variables_of_the_step_are_expanded_where_the_shell_is_certain() {
        let vars = |n: &str| match n {
            "TAG" => Some("1.2-r0".to_owned()),
            "PKGS" => Some("a b".to_owned()),
            "GLOB" => Some("a*".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let s = |t| split_shell(t, &vars);
        let words = |v: &[&str]| Some(vec![v.iter().map(|w| (*w).to_owned()).collect()]);
        assert_eq!(s("apk add app=$TAG"), words(&["apk", "add", "app=1.2-r0"]));
        assert_eq!(
            s("apk add app=${TAG}x"),
            words(&["apk", "add", "app=1.2-r0x"])
        );
        assert_eq!(
            s("apk add \"app=$TAG\""),
            words(&["apk", "add", "app=1.2-r0"])
        );
        assert_eq!(s("apk add \"$PKGS\""), words(&["apk", "add", "a b"]));
        assert_eq!(s("apk add '$TAG'"), words(&["apk", "add", "$TAG"]));
        // Split, globbed, dropped, unset, or another kind of expansion: the shell's job.
        for t in [
            "apk add $PKGS",
            "apk add $GLOB",
            "apk add $EMPTY",
            "apk add $UNSET",
            "apk add ${TAG:-1}",
            "apk add $1",
            "apk add ${TAG",
            "apk add $",
        ] {
            assert_eq!(s(t), None, "{t}");
        }
    }
}
