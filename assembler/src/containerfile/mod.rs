//! The Containerfile (Dockerfile) syntax: a hand-written parser, Docker's variable
//! expansion rules, build-argument scoping and recognition of `apk add`/`apk del` steps.
//!
//! The parser follows moby/buildkit's `frontend/dockerfile/parser` behaviour: parser
//! directives (`# escape=`, `# syntax=`), line continuations with the escape character
//! (comment and blank lines inside a continuation are dropped), JSON exec form vs shell
//! form, heredocs for RUN/COPY/ADD, and `--flags`. Values stay unexpanded in the AST: the
//! engine expands them at build time with [`expand`] and the build's variables, because
//! the values of ARG and ENV are only known while the stages are being built.

// A parse stops at its first error, so a large error value is moved once: keep the
// public fields flat (`err.line`, `err.kind`) rather than boxed.
#![allow(clippy::result_large_err)]

pub mod apk;
pub mod args;
mod error;
pub mod expand;
mod expanded;
mod instruction;
mod lexer;
pub mod mount;
mod onbuild;
mod stages;

use std::path::Path;

pub use apk::{ApkAction, ApkCommand, detect_apk, detect_apk_with};
pub use args::{BuildArgs, Platform, StageArgs};
pub use error::{ParseError, ParseErrorKind};
pub use expand::{ExpandError, Vars, expand_word, expand_words};
pub use expanded::expand_heredoc;
pub use mount::{MountError, MountSpec, MountType, Sharing};
pub use onbuild::parse_trigger;

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Containerfile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// Things the parser accepted but ignores, for the engine to report (e.g. `# syntax=`).
    pub notes: Vec<String>,
    /// ARG instructions before the first FROM: usable in FROM lines only, unless a stage
    /// declares them again.
    pub global_args: Vec<Arg>,
    /// The ARG instructions before the first FROM, as instructions (spans, for messages).
    pub global_arg_instructions: Vec<Instruction>,
    /// Build stages in file order.
    pub stages: Vec<Stage>,
}

impl Containerfile {
    /// The stage a `--target` (or `COPY --from=`) name refers to: a stage name
    /// (case-insensitive, as Docker) or a stage index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| lower.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// One build stage: a FROM and the instructions that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stage {
    /// Position of the stage in the file, from 0.
    pub index: usize,
    /// The `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// The FROM instruction (its kind is always [`Kind::From`]).
    pub from: Instruction,
    /// Everything after FROM up to the next FROM.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The base image reference of the stage, unexpanded.
    pub fn base(&self) -> &str {
        match &self.from.kind {
            Kind::From { image, .. } => image,
            _ => "",
        }
    }
}

/// One instruction with its flags and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Instruction {
    pub kind: Kind,
    /// The `--name[=value]` flags, in source order, values unexpanded.
    pub flags: Vec<Flag>,
    pub span: Span,
}

impl Instruction {
    /// The instruction keyword in upper case (`RUN`, `COPY`…).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The value of flag `--name` (last one wins, as Docker's flag parser), `Some("")`
    /// for a bare boolean flag, `None` when absent.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or(""))
    }

    /// All values of a repeatable flag such as `--mount` or `--exclude`.
    pub fn flag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| f.value.as_deref().unwrap_or(""))
    }

    /// Whether the builder expands variables in this instruction's words (Docker expands
    /// ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG and, once
    /// triggered, ONBUILD's instruction; RUN CMD ENTRYPOINT SHELL MAINTAINER HEALTHCHECK
    /// are left to the shell at run time).
    pub fn expands(&self) -> bool {
        self.kind.expands()
    }
}

/// `--name` or `--name=value` on an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Flag {
    pub name: String,
    /// `None` for a bare `--name`.
    pub value: Option<String>,
}

impl Flag {
    /// Whether Docker expands variables in this flag's value (`--from`, `--chown`,
    /// `--chmod`, `--platform`, `--checksum`… are expanded; `--mount` is expanded by
    /// buildkit per field, `--network` and `--link` are not).
    pub fn expands(&self) -> bool {
        !matches!(
            self.name.as_str(),
            "network" | "link" | "keep-git-dir" | "security"
        )
    }
}

/// Where an instruction is in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Span {
    /// First line, from 1.
    pub line: usize,
    /// Column of the keyword on the first line, from 1 (in characters).
    pub column: usize,
    /// Last line (continuations and heredoc bodies included).
    pub end_line: usize,
    /// The original source lines `line..=end_line`, joined with `\n`.
    pub text: String,
    /// The instruction on one line as Docker shows it in `Step N/M : …`: continuations
    /// joined, comment lines dropped, heredoc bodies left out.
    pub logical: String,
    /// Where each flag starts, in the order of [`Instruction::flags`]: (lines below
    /// `line`, column from 1), so an error about a flag's value can point at it.
    pub flag_at: Vec<(usize, usize)>,
}

/// Exec form (`["a", "b"]`, run without a shell) or shell form (run with SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

/// A heredoc attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heredoc {
    /// The delimiter word without quotes; for COPY/ADD also the file name.
    pub delimiter: String,
    /// The body, each line ending with `\n`; with `<<-` leading tabs already removed.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from the body and the terminator.
    pub strip_tabs: bool,
    /// The file descriptor for `3<<EOF` forms (RUN only), `None` for plain `<<EOF`.
    pub fd: Option<u32>,
}

/// What a RUN with heredocs executes, following buildkit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunScript<'a> {
    /// `RUN <<EOF` alone: the body is the script. Docker runs it as a file with the
    /// SHELL, or directly when it starts with `#!`.
    Body(&'a Heredoc),
    /// A command using heredocs (`RUN python3 <<EOF`): the command line followed by each
    /// body and its terminator, to run with SHELL's `-c` (the shell does the redirects).
    Shell(String),
}

impl Kind {
    /// For a shell-form RUN with heredocs, what to execute; `None` otherwise.
    pub fn run_script(&self) -> Option<RunScript<'_>> {
        let Kind::Run {
            command: CommandForm::Shell(cmd),
            heredocs,
        } = self
        else {
            return None;
        };
        let first = heredocs.first()?;
        let lone = heredocs.len() == 1 && {
            let c = cmd.trim_start_matches(|c: char| c.is_ascii_digit());
            c.strip_prefix("<<")
                .map(|r| r.strip_prefix('-').unwrap_or(r).trim_start())
                .is_some_and(|r| !r.contains(char::is_whitespace) || r.starts_with(['"', '\'']))
                && first.fd.is_none()
        };
        if lone {
            return Some(RunScript::Body(first));
        }
        let mut script = cmd.clone();
        script.push('\n');
        for h in heredocs {
            script.push_str(&h.content);
            script.push_str(&h.delimiter);
            script.push('\n');
        }
        Some(RunScript::Shell(script))
    }
}

/// An ARG declaration `NAME[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Arg {
    pub name: String,
    /// Unexpanded default value (quotes still in place, as written).
    pub default: Option<String>,
}

impl Arg {
    pub fn new(name: impl Into<String>, default: Option<String>) -> Self {
        Self {
            name: name.into(),
            default,
        }
    }
}

/// HEALTHCHECK's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    /// `HEALTHCHECK [options] CMD command`.
    Check(HealthcheckCmd),
}

/// The options and command of `HEALTHCHECK CMD`. Durations are Docker's Go syntax,
/// already validated; `None` means "not given" (inherit the default).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthcheckCmd {
    pub command: CommandForm,
    pub interval: Option<std::time::Duration>,
    pub timeout: Option<std::time::Duration>,
    pub start_period: Option<std::time::Duration>,
    pub start_interval: Option<std::time::Duration>,
    pub retries: Option<u32>,
}

/// The instruction and its parsed, unexpanded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `FROM [--platform=…] image [AS name]`; `image` may be `scratch`.
    From {
        image: String,
        name: Option<String>,
    },
    Run {
        command: CommandForm,
        heredocs: Vec<Heredoc>,
    },
    /// `COPY [flags] src… dest` or JSON form; heredoc sources are in `heredocs`, not in
    /// `sources`.
    Copy {
        sources: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    Add {
        sources: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    /// Key/value pairs; values raw (quotes kept: [`expand_word`] removes them).
    Env(Vec<(String, String)>),
    Arg(Vec<Arg>),
    Label(Vec<(String, String)>),
    /// Deprecated; the engine turns it into the `maintainer` label.
    Maintainer(String),
    /// Port words such as `80`, `53/udp`, `8000-8010/tcp`, unexpanded.
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    /// SHELL takes the JSON form only.
    Shell(Vec<String>),
    Entrypoint(CommandForm),
    Cmd(CommandForm),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction, parsed; the engine reports ONBUILD as unsupported.
    Onbuild(Box<Instruction>),
}

impl Kind {
    /// The keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Run { .. } => "RUN",
            Kind::Copy { .. } => "COPY",
            Kind::Add { .. } => "ADD",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Maintainer(_) => "MAINTAINER",
            Kind::Expose(_) => "EXPOSE",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Shell(_) => "SHELL",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Cmd(_) => "CMD",
            Kind::Volume(_) => "VOLUME",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
        }
    }

    /// See [`Instruction::expands`].
    pub fn expands(&self) -> bool {
        matches!(
            self,
            Kind::From { .. }
                | Kind::Copy { .. }
                | Kind::Add { .. }
                | Kind::Env(_)
                | Kind::Arg(_)
                | Kind::Label(_)
                | Kind::Expose(_)
                | Kind::User(_)
                | Kind::Workdir(_)
                | Kind::Volume(_)
                | Kind::StopSignal(_)
                | Kind::Onbuild(_)
        )
    }
}

/// Every instruction keyword the parser knows, upper case.
pub const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "USER",
    "WORKDIR",
    "SHELL",
    "ENTRYPOINT",
    "CMD",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
];

/// Parse a Containerfile. `path` is used in error messages only.
pub fn parse(source: &str, path: &Path) -> Result<Containerfile, ParseError> {
    let lexed = lexer::lex(source, path)?;
    let mut notes = lexed.notes;
    let mut global_args = Vec::new();
    let mut global_arg_instructions = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for raw in &lexed.instructions {
        let inst = instruction::build(raw, lexed.escape, path, &mut notes)?;
        match (&inst.kind, stages.last_mut()) {
            (Kind::From { name, .. }, _) => {
                if let Some(n) = name
                    && let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(n))
                {
                    return Err(raw.error(
                        path,
                        ParseErrorKind::DuplicateStageName { name: n.clone() },
                        raw.args_start,
                        format!("duplicate stage name `{n}`"),
                        Some(format!(
                            "stage `{n}` is already defined on line {}; pick another name",
                            prev.from.span.line
                        )),
                    ));
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    from: inst,
                    instructions: Vec::new(),
                });
            }
            (Kind::Arg(args), None) => {
                global_args.extend(args.iter().cloned());
                global_arg_instructions.push(inst);
            }
            (_, None) => {
                return Err(raw.error(
                    path,
                    ParseErrorKind::NoStage,
                    0,
                    format!("{} before the first FROM", inst.name()),
                    Some(
                        "only ARG may come before FROM; start the file with `FROM <image>` \
                         (or `FROM scratch`)"
                            .to_owned(),
                    ),
                ));
            }
            (_, Some(stage)) => stage.instructions.push(inst),
        }
    }
    if stages.is_empty() {
        return Err(ParseError::new(
            path,
            ParseErrorKind::NoStage,
            source.lines().count().max(1),
            1,
            source.lines().last().unwrap_or("").to_owned(),
            "the file has no FROM instruction".to_owned(),
            Some("a Containerfile needs at least `FROM <image>` (or `FROM scratch`)".to_owned()),
        ));
    }
    Ok(Containerfile {
        escape: lexed.escape,
        notes,
        global_args,
        global_arg_instructions,
        stages,
    })
}

/// Read and parse a Containerfile from disk.
pub fn parse_file(path: &Path) -> Result<Containerfile, ReadError> {
    let source = fs_err::read_to_string(path).map_err(ReadError::Io)?;
    parse(&source, path).map_err(|e| ReadError::Parse(Box::new(e)))
}

/// Reading a Containerfile from disk failed. Both causes name the file already (fs-err's
/// I/O errors the path, a parse error `file:line:col` and a snippet), so this adds no words:
/// transparent, each cause is printed once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be read.
    #[error(transparent)]
    Io(std::io::Error),
    /// The file is not a valid Containerfile.
    #[error(transparent)]
    Parse(Box<ParseError>),
}
