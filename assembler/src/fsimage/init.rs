//! What `/sbin/init` is in a VM filesystem image, so the VM runs the image's ENTRYPOINT + CMD
//! ("without the ENTRYPOINT the VM starts but runs nothing").
//!
//! - ENTRYPOINT/CMD starting with `/sbin/init`: the image brings its own init; kept as is.
//! - ENTRYPOINT `["/init"]` and an `/init` in the image (the s6 init of `--init s6`, which
//!   knows how to be a VM's PID 1): `/sbin/init` → `/init`, a symlink, or a two-line script
//!   passing the remaining arguments when there are any.
//! - Anything else: the generated `/bin/sh` script of [`script`], which mounts the kernel
//!   filesystems, sets ENV, WORKDIR and USER, runs ENTRYPOINT + CMD and powers the VM off
//!   when it ends.

use crate::config::ImageConfig;

use super::tree::{Kind, Tree};

/// The PATH Docker gives a container whose ENV sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why no `/sbin/init` can be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// Neither ENTRYPOINT nor CMD, and no init of the image's own.
    #[error(
        "the image has no ENTRYPOINT or CMD and no /sbin/init, so a VM booting it would run nothing; add an ENTRYPOINT or CMD"
    )]
    NoCommand,
    /// The generated init is a shell script and the image has no shell.
    #[error(
        "the image has no /bin/sh to run the generated /sbin/init (which starts {argv:?}); add a shell (busybox), use an s6 image (`--init s6`), or make ENTRYPOINT /sbin/init"
    )]
    NoShell {
        /// What the init would start.
        argv: Vec<String>,
    },
    /// ENTRYPOINT names /sbin/init but the image has none.
    #[error(
        "ENTRYPOINT/CMD starts /sbin/init but the image has no /sbin/init; add it or change ENTRYPOINT"
    )]
    MissingOwnInit,
}

/// What the export writes at `/sbin/init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Init {
    /// The image's own `/sbin/init`, untouched.
    Own,
    /// A symlink to this target.
    Link(String),
    /// A shell script with this text (the generated init).
    Script(String),
    /// A shell script starting `/init` with arguments.
    S6Script(String),
}

impl Init {
    /// The word recorded in `config.json` (`"Init"`).
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Own => "image",
            Self::Link(_) | Self::S6Script(_) => "s6",
            Self::Script(_) => "generated",
        }
    }
}

/// Single-quotes `s` for `/bin/sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn exports(cfg: &ImageConfig) -> String {
    let mut out = String::new();
    if cfg.env_get("PATH").is_none() {
        out.push_str(&format!("export PATH={}\n", quote(DEFAULT_PATH)));
    }
    for e in &cfg.env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        if is_name(k) {
            out.push_str(&format!("export {k}={}\n", quote(v)));
        } else {
            out.push_str(&format!(
                "# ENV {} is not a shell variable name: not set\n",
                quote(k)
            ));
        }
    }
    out
}

fn has(tree: &Tree, path: &str) -> bool {
    tree.get(path).is_some_and(|m| m.kind != Kind::Dir)
}

/// Decides `/sbin/init` for an image with config `cfg` and files `tree`; `ids` is USER as
/// numeric `(uid, gid)` (resolved through the image's passwd).
pub fn plan(cfg: &ImageConfig, tree: &Tree, ids: (u32, u32)) -> Result<Init, InitError> {
    let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
    argv.extend(cfg.cmd.clone().unwrap_or_default());
    if argv.first().map(String::as_str) == Some("/sbin/init") {
        return if has(tree, "sbin/init") {
            Ok(Init::Own)
        } else {
            Err(InitError::MissingOwnInit)
        };
    }
    if argv.is_empty() {
        return if has(tree, "sbin/init") {
            Ok(Init::Own)
        } else {
            Err(InitError::NoCommand)
        };
    }
    let s6 = cfg
        .entrypoint
        .as_ref()
        .and_then(|e| e.first())
        .map(String::as_str)
        == Some("/init")
        && has(tree, "init");
    if s6 && argv.len() == 1 {
        return Ok(Init::Link("/init".into()));
    }
    if !has(tree, "bin/sh") {
        return Err(InitError::NoShell { argv });
    }
    if s6 {
        let mut s = String::from(
            "#!/bin/sh\n# /sbin/init written by `assemble`: starts the image's s6 init (ENTRYPOINT \
             [\"/init\"]) with the rest of ENTRYPOINT + CMD. See /etc/assemble/config.json.\n",
        );
        s.push_str(&exports(cfg));
        s.push_str("exec /init");
        push_args(&mut s, &argv[1..]);
        return Ok(Init::S6Script(s));
    }
    Ok(Init::Script(script(cfg, &argv, ids)))
}

/// The generated init: PID 1 of a VM whose image has no init of its own: mounts, the
/// image's ENV and WORKDIR, ENTRYPOINT + CMD as its USER, then the supervision that forwards
/// signals and powers the VM off.
fn script(cfg: &ImageConfig, argv: &[String], ids: (u32, u32)) -> String {
    let mut s = String::from(SCRIPT_MOUNTS);
    s.push_str(&exports(cfg));
    if !cfg.working_dir.is_empty() {
        let wd = quote(&cfg.working_dir);
        s.push_str(&format!(
            "cd {wd} 2>/dev/null || echo \"init: WORKDIR \"{wd}\" is missing\" >&2\n"
        ));
    }
    s.push_str("set --");
    push_args(&mut s, argv);
    push_main(&mut s, cfg, ids);
    s.push_str(SCRIPT_SUPERVISE);
    s
}

/// ` arg1 arg2 ...` (each quoted for the shell) and the end of the line.
fn push_args(s: &mut String, argv: &[String]) {
    for a in argv {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s.push('\n');
}

/// The script's `main`: runs its arguments as the image's USER.
fn push_main(s: &mut String, cfg: &ImageConfig, (uid, gid): (u32, u32)) {
    if (uid, gid) == (0, 0) {
        s.push_str("main() { exec \"$@\"; }\n");
        return;
    }
    // busybox has `su` (by name only) but not a numeric setuidgid tool; util-linux's
    // setpriv, su-exec and s6-setuidgid take numbers.
    let name = cfg.user.split(':').next().unwrap_or_default();
    let su = if name.is_empty() || name.parse::<u32>().is_ok() {
        String::new()
    } else {
        format!(
            "  if command -v su >/dev/null 2>&1; then exec su -p -s /bin/sh {} -c 'exec \"$@\"' init \"$@\"; fi\n",
            quote(name)
        )
    };
    s.push_str(&format!(
        r#"# USER {user} is {uid}:{gid}; switch with whichever tool the image has.
main() {{
  if command -v s6-setuidgid >/dev/null 2>&1; then exec s6-setuidgid {uid}:{gid} "$@"; fi
  if command -v su-exec >/dev/null 2>&1; then exec su-exec {uid}:{gid} "$@"; fi
  if setpriv --help 2>&1 | grep -q -- --reuid; then exec setpriv --reuid={uid} --regid={gid} --clear-groups "$@"; fi
{su}  echo "init: cannot switch to USER {uid}:{gid}: the image has no s6-setuidgid, su-exec, setpriv or su" >&2
  exit 126
}}
"#,
        user = quote(&cfg.user),
    ));
}

/// The script's start: helpers, then the kernel file systems and `lo`.
const SCRIPT_MOUNTS: &str = r#"#!/bin/sh
# /sbin/init written by `assemble` (ext4/squashfs output) so that a VM booting this root runs
# the image's ENTRYPOINT + CMD. It mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm and
# /run when not mounted yet, brings up `lo` when `ip` exists, sets the image's ENV, changes to
# its WORKDIR, runs ENTRYPOINT + CMD as its USER with the console as stdin/stdout/stderr,
# forwards SIGTERM/SIGINT to it, and powers the VM off when it exits.
# The image config it was made from: /etc/assemble/config.json.
mounted() { grep -qs "^[^ ]* $1 " /proc/mounts; }
mnt() {
  mounted "$3" && return 0
  mkdir -p "$3" 2>/dev/null
  mount -t "$1" -o "$4" "$2" "$3" 2>/dev/null || echo "init: could not mount $3 ($1)" >&2
}
if command -v mount >/dev/null 2>&1; then
  [ -e /proc/self ] || mount -t proc -o nosuid,nodev,noexec proc /proc
  mnt sysfs sysfs /sys nosuid,nodev,noexec
  mnt devtmpfs devtmpfs /dev mode=0755,nosuid
  mnt devpts devpts /dev/pts mode=0620,gid=5,nosuid,noexec
  mnt tmpfs shm /dev/shm mode=1777,nosuid,nodev
  mnt tmpfs run /run mode=0755,nosuid,nodev
else
  echo "init: no mount command in the image: /proc, /sys and /dev are not mounted" >&2
fi
command -v ip >/dev/null 2>&1 && ip link set lo up 2>/dev/null
"#;

/// The script's end: runs `main` in the background, forwards signals to it, and powers off
/// when it exits.
const SCRIPT_SUPERVISE: &str = r#"# Traps first, so a signal is never lost between the start and the trap (a subshell starts
# with the default actions again). A signal that comes after the fork but before `pid=$!`
# (the main process may already run, even print) is kept and forwarded once the pid is
# known. An asynchronous command gets /dev/null as stdin: hand it the console through fd 3.
pid=
pending=
forward() { if [ -n "$pid" ]; then kill -"$1" "$pid" 2>/dev/null; else pending=$1; fi; }
trap 'forward TERM' TERM
trap 'forward INT' INT
exec 3<&0
main "$@" <&3 3<&- &
pid=$!
[ -n "$pending" ] && kill -"$pending" "$pid" 2>/dev/null
while :; do
  wait $pid
  code=$?
  kill -0 $pid 2>/dev/null || break
done
echo "init: main process exited with status $code; powering off" >&2
sync
poweroff -f 2>/dev/null || reboot -f 2>/dev/null || halt -f 2>/dev/null
sleep 5
exit "$code"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsimage::tree::Meta;

    fn tree(paths: &[&str]) -> Tree {
        paths
            .iter()
            .map(|p| ((*p).to_string(), Meta::root_owned(Kind::File(1), 0o755, 0)))
            .collect()
    }

    fn cfg(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect();
        ImageConfig {
            entrypoint: ep.map(v),
            cmd: cmd.map(v),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn own_init_is_kept_and_s6_is_linked() {
        let t = tree(&["sbin/init", "init", "bin/sh"]);
        assert_eq!(
            plan(&cfg(Some(&["/sbin/init"]), None), &t, (0, 0)),
            Ok(Init::Own)
        );
        assert_eq!(plan(&cfg(None, None), &t, (0, 0)), Ok(Init::Own));
        assert_eq!(
            plan(&cfg(Some(&["/init"]), None), &t, (0, 0)),
            Ok(Init::Link("/init".into()))
        );
        let Ok(Init::S6Script(s)) = plan(&cfg(Some(&["/init"]), Some(&["x y"])), &t, (0, 0)) else {
            panic!()
        };
        assert!(s.ends_with("exec /init 'x y'\n"), "{s}");
    }

    #[test]
    fn missing_pieces_are_clear_errors() {
        assert_eq!(
            plan(&cfg(None, None), &tree(&[]), (0, 0)),
            Err(InitError::NoCommand)
        );
        assert_eq!(
            plan(&cfg(Some(&["/sbin/init"]), None), &tree(&[]), (0, 0)),
            Err(InitError::MissingOwnInit)
        );
        assert!(matches!(
            plan(&cfg(None, Some(&["/app"])), &tree(&["app"]), (0, 0)),
            Err(InitError::NoShell { .. })
        ));
    }

    #[test]
    fn script_quotes_and_switches_user() {
        let mut c = cfg(Some(&["/bin/echo"]), Some(&["it's", "$HOME"]));
        c.env = vec!["A=b c".into(), "bad-name=1".into()];
        c.user = "app".into();
        c.working_dir = "/srv".into();
        let Ok(Init::Script(s)) = plan(&c, &tree(&["bin/sh"]), (1000, 1001)) else {
            panic!()
        };
        assert!(s.contains("set -- '/bin/echo' 'it'\\''s' '$HOME'\n"), "{s}");
        assert!(s.contains("export A='b c'\n"), "{s}");
        assert!(s.contains("export PATH='/usr/local/sbin"), "{s}");
        assert!(s.contains("# ENV 'bad-name' is not"), "{s}");
        assert!(s.contains("s6-setuidgid 1000:1001"), "{s}");
        assert!(s.contains("cd '/srv'"), "{s}");
    }
}
