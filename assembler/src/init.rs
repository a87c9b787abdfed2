//! `assemble --init s6` (or `LABEL org.assemble.init=s6`): the image's ENTRYPOINT and CMD
//! become the supervised service `/etc/services.d/main` of the `s6-init` package's `/init`
//! (recipes in `s6/`), and `/init` becomes the entrypoint.
//!
//! What the step writes, as one snapshot on top of the target stage:
//! - `/etc/services.d/main/run`: an execline script running ENTRYPOINT + CMD (already an argv:
//!   the shell form went through SHELL when the Containerfile was read) through
//!   `with-contenv` (the container environment), `cd` WORKDIR, and `s6-setuidgid` USER;
//! - `/etc/services.d/main/finish`: records the exit code and brings everything down when
//!   the program exits by itself; killed by a signal, s6-supervise restarts it;
//! - `/etc/s6-init/env/NAME`: the image ENV, which `/init` uses where no runtime set it (VMs);
//! - `/etc/s6-init/cmd`: how a command given to `/init` runs (`podman run IMAGE CMD…`): as
//!   Docker runs a CMD given to `run`, after the image's ENTRYPOINT, in its WORKDIR, as its
//!   USER; `/etc/s6-init/replaced-by-cmd` names the generated `main`, which it replaces.
//!
//! The config then runs `/init` as root (USER, ENTRYPOINT and CMD move to labels).
//! Service directories the Containerfile added (`ADD etc /etc`) are left as they are, and
//! an existing `/etc/services.d/main` wins over the generated one.

use std::io::Write as _;
use std::path::Path;

use crate::config::ImageConfig;

/// The label that asks for an init, as `--init` does.
pub const INIT_LABEL: &str = "org.assemble.init";
/// Where the original ENTRYPOINT is kept (JSON array).
pub const ENTRYPOINT_LABEL: &str = "org.assemble.init.entrypoint";
/// Where the original CMD is kept (JSON array).
pub const CMD_LABEL: &str = "org.assemble.init.cmd";
/// Where the original USER is kept.
pub const USER_LABEL: &str = "org.assemble.init.user";

/// The package that gives `/init`.
const INIT_PACKAGE: &str = "s6-init";
/// The directory of the generated main service.
const MAIN_SERVICE: &str = "etc/services.d/main";
/// How `/init`'s arguments run (stage 2 runs them through it).
const CMD_SCRIPT: &str = "etc/s6-init/cmd";
/// The services a command given to `/init` replaces (stage 2 does not start them then).
const REPLACED_BY_CMD: &str = "etc/s6-init/replaced-by-cmd";

/// The inits `--init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Init {
    /// s6-svscan as PID 1 with the s6-overlay v2 layout (package `s6-init`).
    S6,
}

/// Why the init step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The label names an init we do not know.
    #[error("LABEL {INIT_LABEL}=`{value}`: unknown init; the only one is `s6`")]
    UnknownLabel {
        /// The label's value.
        value: String,
    },
    /// `/init` is missing.
    #[error(
        "--init s6: the image has no /init; add the `{INIT_PACKAGE}` package (built from s6/ \
         in this repository with `apkbuild build-all s6`), e.g. \
         `RUN apk add --repository REPO --keys-dir KEYS {INIT_PACKAGE}`"
    )]
    NoInit,
    /// Neither a command nor any service.
    #[error(
        "--init s6: the image has no ENTRYPOINT or CMD and no /etc/services.d/*: nothing to \
         supervise; add a CMD or service directories"
    )]
    NothingToRun,
    /// USER names nobody in the image.
    #[error(transparent)]
    User(#[from] crate::sandbox::SandboxError),
    /// Reaching a path inside the root.
    #[error("--init s6: {0}")]
    Root(#[from] apk::rootfs::RootfsError),
    /// Writing inside the root.
    #[error("--init s6: failed to write `/{path}` in the image: {source}")]
    Write {
        /// The path inside the image.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The init asked for: `--init` first, else the label.
pub fn requested(cli: Option<Init>, config: &ImageConfig) -> Result<Option<Init>, InitError> {
    if cli.is_some() {
        return Ok(cli);
    }
    match config.labels.get(INIT_LABEL).map(String::as_str) {
        None | Some("" | "none") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("s6") => Ok(Some(Init::S6)),
        Some(v) => Err(InitError::UnknownLabel { value: v.into() }),
    }
}

/// The files of the generated main service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainService {
    /// `run`.
    pub run: String,
    /// `finish`.
    pub finish: String,
}

/// What [`apply`] did, for the build output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The argv of the generated main service, if one was generated.
    pub main: Option<Vec<String>>,
}

/// The program the image runs: ENTRYPOINT + CMD, without an `/init` left by an earlier
/// `--init` (the original is then in the labels).
pub fn program(config: &ImageConfig) -> Vec<String> {
    let mut argv = config.entrypoint.clone().unwrap_or_default();
    if argv == ["/init"] {
        argv = label_argv(config, ENTRYPOINT_LABEL);
        let cmd = config.cmd.clone().unwrap_or_default();
        argv.extend(if cmd.is_empty() {
            label_argv(config, CMD_LABEL)
        } else {
            cmd
        });
        return argv;
    }
    argv.extend(config.cmd.clone().unwrap_or_default());
    argv
}

fn label_argv(config: &ImageConfig, label: &str) -> Vec<String> {
    config
        .labels
        .get(label)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// An execline word: always quoted, so spaces, `{`, `}`, `#` and `$` stay literal.
fn quote(word: &str) -> String {
    let mut s = String::with_capacity(word.len() + 2);
    s.push('"');
    for c in word.chars() {
        if matches!(c, '"' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// The execline lines every generated script starts its program with: the container
/// environment, `HOME`, WORKDIR and the USER (`name`, or `uid:gid` as resolved from the
/// image).
fn program_prelude(workdir: &str, user: Option<&str>, home: Option<&str>) -> String {
    let mut s = String::from("with-contenv\n");
    if let Some(home) = home {
        s.push_str(&format!("export HOME {}\n", quote(home)));
    }
    if !workdir.is_empty() {
        s.push_str(&format!("cd {}\n", quote(workdir)));
    }
    if let Some(user) = user {
        s.push_str(&format!("s6-setuidgid {}\n", quote(user)));
    }
    s
}

/// The `run` and `finish` scripts for `argv`, run in `workdir` as `user` (`name`, or
/// `uid:gid` as resolved from the image), with `HOME` set when the user has one.
pub fn main_service(
    argv: &[String],
    workdir: &str,
    user: Option<&str>,
    home: Option<&str>,
) -> MainService {
    let mut run = String::from(
        "#!/usr/bin/execlineb -P\n\
         # Generated by `assemble --init s6` from the image's ENTRYPOINT and CMD.\n",
    );
    run.push_str(&program_prelude(workdir, user, home));
    let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
    run.push_str(&words.join(" "));
    run.push('\n');
    let finish = String::from(
        "#!/usr/bin/execlineb -S0\n\
         # Generated by `assemble --init s6`. $1 is the exit code, or 256 and $2 the signal.\n\
         # Exited by itself: record the code and bring everything down (/init exits with it).\n\
         # Killed by a signal: s6-supervise restarts it.\n\
         if { /usr/libexec/s6-init/s6-init-helper exitcode $@ }\n\
         s6-svscanctl -t /run/s6/services\n",
    );
    MainService { run, finish }
}

/// `/etc/s6-init/cmd`: a command given to `/init` runs after `entrypoint`, in `workdir`, as
/// `user`, as `docker run IMAGE CMD…` runs it.
pub fn cmd_script(
    entrypoint: &[String],
    workdir: &str,
    user: Option<&str>,
    home: Option<&str>,
) -> String {
    let mut s = String::from(
        "#!/usr/bin/execlineb -S0\n\
         # Generated by `assemble --init s6`: a command given to /init (`podman run IMAGE \
         CMD...`)\n\
         # runs as Docker runs it: after the image's ENTRYPOINT, in its WORKDIR, as its USER.\n",
    );
    s.push_str(&program_prelude(workdir, user, home));
    for w in entrypoint {
        s.push_str(&quote(w));
        s.push(' ');
    }
    s.push_str("$@\n");
    s
}

/// The USER for `s6-setuidgid` (a plain name as is, anything else as `uid:gid`) and the
/// user's home from the image's `/etc/passwd`.
fn service_user(rootfs: &Path, user: &str) -> Result<(Option<String>, Option<String>), InitError> {
    if user.is_empty() || user == "root" || user == "0" || user == "0:0" {
        return Ok((None, None));
    }
    let (uid, gid) = crate::sandbox::resolve_user(rootfs, user)?;
    let home = read_in_root(rootfs, "etc/passwd").and_then(|passwd| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[2] == uid.to_string() && !f[5].is_empty()).then(|| f[5].to_string())
        })
    });
    let plain_name = !user.contains(':') && user.parse::<u32>().is_err();
    let who = if plain_name {
        user.to_string()
    } else {
        format!("{uid}:{gid}")
    };
    Ok((Some(who), home))
}

fn read_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    let root = apk::rootfs::RootDir::open(rootfs).ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut root.open_file(rel).ok()?, &mut s).ok()?;
    Some(s)
}

/// Writes the init's files into `rootfs` and rewrites `config` to start `/init`.
pub fn apply(rootfs: &Path, config: &mut ImageConfig, init: Init) -> Result<Applied, InitError> {
    let Init::S6 = init;
    let root = apk::rootfs::RootDir::open(rootfs)?;
    let exists = |rel: &str| root.exists(rel).unwrap_or(false);
    if !exists("init") {
        return Err(InitError::NoInit);
    }
    let argv = program(config);
    // Listed by the path the resolver reached (inside the root, symlinks resolved there).
    let has_services = root
        .open_dir("etc/services.d")
        .ok()
        .and_then(|d| fs_err::read_dir(d.path()).ok())
        .is_some_and(|mut d| d.next().is_some());
    if argv.is_empty() && !has_services {
        return Err(InitError::NothingToRun);
    }
    let files = Files { root: &root };
    let user = if config.user.is_empty() {
        config.labels.get(USER_LABEL).cloned().unwrap_or_default()
    } else {
        config.user.clone()
    };
    let (who, home) = service_user(rootfs, &user)?;
    // Docker creates WORKDIR; the scripts' `cd` needs it.
    if !config.working_dir.is_empty() {
        files.mkdir(config.working_dir.trim_start_matches('/'))?;
    }
    let mut generated = None;
    if !argv.is_empty() && !exists(MAIN_SERVICE) {
        let svc = main_service(&argv, &config.working_dir, who.as_deref(), home.as_deref());
        files.mkdir(MAIN_SERVICE)?;
        files.write(&format!("{MAIN_SERVICE}/run"), &svc.run, 0o755)?;
        files.write(&format!("{MAIN_SERVICE}/finish"), &svc.finish, 0o755)?;
        files.mkdir("etc/s6-init")?;
        files.write(REPLACED_BY_CMD, "main\n", 0o644)?;
        generated = Some(argv.clone());
    }
    let entrypoint = original_entrypoint(config);
    files.mkdir("etc/s6-init/env")?;
    let cmd = cmd_script(
        &entrypoint,
        &config.working_dir,
        who.as_deref(),
        home.as_deref(),
    );
    files.write(CMD_SCRIPT, &cmd, 0o755)?;
    write_env(&files, config)?;
    move_to_labels(config);
    Ok(Applied { main: generated })
}

/// The image's own ENTRYPOINT: the config's, or the label's after an earlier `--init`.
fn original_entrypoint(config: &ImageConfig) -> Vec<String> {
    match &config.entrypoint {
        Some(e) if e == &["/init".to_string()] => label_argv(config, ENTRYPOINT_LABEL),
        Some(e) => e.clone(),
        None => Vec::new(),
    }
}

/// Writing the init's files inside the root.
struct Files<'a> {
    root: &'a apk::rootfs::RootDir,
}

impl Files<'_> {
    fn write(&self, rel: &str, text: &str, mode: u32) -> Result<(), InitError> {
        let err = |source: std::io::Error| InitError::Write {
            path: rel.to_string(),
            source,
        };
        let mut f = self.root.create_file(rel, mode)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        // create_file honours the umask; the scripts must be executable whatever it is.
        Ok(self.root.set_mode(rel, mode)?)
    }

    fn mkdir(&self, rel: &str) -> Result<(), InitError> {
        Ok(self.root.create_dir_all(rel, 0o755)?)
    }
}

/// The image ENV as `/etc/s6-init/env/NAME` files.
fn write_env(files: &Files<'_>, config: &ImageConfig) -> Result<(), InitError> {
    for kv in &config.env {
        if let Some((k, v)) = kv.split_once('=')
            && !k.is_empty()
            && !k.contains('/')
            && k != "."
            && k != ".."
        {
            files.write(&format!("etc/s6-init/env/{k}"), v, 0o644)?;
        }
    }
    Ok(())
}

/// The config runs `/init` as root; ENTRYPOINT, CMD and USER move to labels.
fn move_to_labels(config: &mut ImageConfig) {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    if config.entrypoint.as_deref() != Some(&["/init".to_string()][..]) {
        if let Some(e) = &config.entrypoint {
            config.labels.insert(ENTRYPOINT_LABEL.into(), json(e));
        }
        if let Some(c) = &config.cmd {
            config.labels.insert(CMD_LABEL.into(), json(c));
        }
    }
    if !config.user.is_empty() {
        config
            .labels
            .insert(USER_LABEL.into(), std::mem::take(&mut config.user));
    }
    config.labels.insert(INIT_LABEL.into(), "s6".into());
    config.entrypoint = Some(vec!["/init".into()]);
    config.cmd = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        ImageConfig {
            entrypoint: entrypoint.map(v),
            cmd: cmd.map(v),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn words_are_quoted_for_execline() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        // `\u{7b}` is an opening brace, escaped so the braces of this file stay balanced.
        assert_eq!(quote("\u{7b}"), "\"\u{7b}\"");
    }

    #[test]
    fn run_script_chains_env_workdir_user_and_argv() {
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "echo $HOME".into()];
        let s = main_service(&argv, "/srv", Some("app"), Some("/home/app"));
        assert_eq!(
            s.run,
            "#!/usr/bin/execlineb -P\n# Generated by `assemble --init s6` from the image's ENTRYPOINT and CMD.\nwith-contenv\nexport HOME \"/home/app\"\ncd \"/srv\"\ns6-setuidgid \"app\"\n\"/bin/sh\" \"-c\" \"echo $HOME\"\n"
        );
        assert!(s.finish.contains("exitcode $@"));
        let s = main_service(&["/x".to_string()], "", None, None);
        assert!(!s.run.contains("cd ") && !s.run.contains("s6-setuidgid"));
    }

    #[test]
    fn the_label_opts_in_and_the_flag_wins() {
        let mut c = cfg(None, Some(&["/x"]));
        assert_eq!(requested(None, &c).unwrap(), None);
        c.labels.insert(INIT_LABEL.into(), "s6".into());
        assert_eq!(requested(None, &c).unwrap(), Some(Init::S6));
        c.labels.insert(INIT_LABEL.into(), "tini".into());
        assert!(requested(None, &c).is_err());
        assert_eq!(requested(Some(Init::S6), &c).unwrap(), Some(Init::S6));
    }

    #[test]
    fn program_is_entrypoint_then_cmd_and_survives_a_second_init() {
        let c = cfg(Some(&["/e", "-v"]), Some(&["arg"]));
        assert_eq!(program(&c), vec!["/e", "-v", "arg"]);
        let mut again = cfg(Some(&["/init"]), None);
        again
            .labels
            .insert(ENTRYPOINT_LABEL.into(), r#"["/e"]"#.into());
        again.labels.insert(CMD_LABEL.into(), r#"["a"]"#.into());
        assert_eq!(program(&again), vec!["/e", "a"]);
    }

    #[test]
    fn apply_writes_the_service_and_moves_the_config_to_labels() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("etc")).unwrap();
        fs_err::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        let mut c = cfg(Some(&["/e"]), Some(&["a b"]));
        c.user = "app".into();
        c.working_dir = "/srv".into();
        c.env = vec!["GREETING=hi there".into(), "PATH=/usr/bin".into()];
        assert!(matches!(
            apply(r, &mut c.clone(), Init::S6),
            Err(InitError::NoInit)
        ));
        fs_err::write(r.join("init"), "#!/usr/bin/execlineb -S0\n").unwrap();
        let done = apply(r, &mut c, Init::S6).unwrap();
        assert_eq!(done.main, Some(vec!["/e".to_string(), "a b".into()]));
        let run = fs_err::read_to_string(r.join("etc/services.d/main/run")).unwrap();
        assert!(
            run.ends_with("s6-setuidgid \"app\"\n\"/e\" \"a b\"\n"),
            "{run}"
        );
        assert_eq!(
            fs_err::read_to_string(r.join("etc/s6-init/env/GREETING")).unwrap(),
            "hi there"
        );
        assert_eq!(c.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(c.cmd, None);
        assert_eq!(c.user, "");
        assert_eq!(c.labels[ENTRYPOINT_LABEL], r#"["/e"]"#);
        assert_eq!(c.labels[CMD_LABEL], r#"["a b"]"#);
        assert_eq!(c.labels[USER_LABEL], "app");
        assert_eq!(c.labels[INIT_LABEL], "s6");
        let cmd = fs_err::read_to_string(r.join("etc/s6-init/cmd")).unwrap();
        assert!(
            cmd.starts_with("#!/usr/bin/execlineb -S0\n")
                && cmd.ends_with("cd \"/srv\"\ns6-setuidgid \"app\"\n\"/e\" $@\n"),
            "{cmd}"
        );
        assert_eq!(
            fs_err::read_to_string(r.join("etc/s6-init/replaced-by-cmd")).unwrap(),
            "main\n"
        );
        // A second pass (a later build FROM this image) regenerates nothing new.
        fs_err::remove_dir_all(r.join("etc/services.d/main")).unwrap();
        let again = apply(r, &mut c, Init::S6).unwrap();
        assert_eq!(again.main, Some(vec!["/e".to_string(), "a b".into()]));
        assert_eq!(c.labels[ENTRYPOINT_LABEL], r#"["/e"]"#);
    }

    #[test]
    fn numeric_users_become_uid_gid_and_an_own_main_service_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("etc/services.d/main")).unwrap();
        fs_err::write(r.join("etc/passwd"), "app:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        assert_eq!(
            service_user(r, "1000").unwrap(),
            (Some("1000:1001".into()), Some("/home/app".into()))
        );
        assert_eq!(service_user(r, "app:7").unwrap().0, Some("1000:7".into()));
        assert_eq!(service_user(r, "root").unwrap(), (None, None));
        assert!(service_user(r, "nobody").is_err());
        fs_err::write(r.join("init"), "").unwrap();
        fs_err::write(r.join("etc/services.d/main/run"), "mine").unwrap();
        let mut c = cfg(None, Some(&["/x"]));
        assert_eq!(apply(r, &mut c, Init::S6).unwrap().main, None);
        assert_eq!(
            fs_err::read_to_string(r.join("etc/services.d/main/run")).unwrap(),
            "mine"
        );
        assert_eq!(c.labels[CMD_LABEL], r#"["/x"]"#);
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        fs_err::write(t.path().join("init"), "").unwrap();
        let mut c = cfg(None, None);
        assert!(matches!(
            apply(t.path(), &mut c, Init::S6),
            Err(InitError::NothingToRun)
        ));
    }
}
