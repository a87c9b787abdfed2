//! `assemble --init s6` (issue 6): the s6 recipes built by the real `apkbuild build-all`
//! into a repository served over HTTP on 127.0.0.1, installed with `RUN apk add`, and the
//! image's `/init` run as PID 1 of its own PID namespace by bubblewrap.
//!
//! bubblewrap runs as the real root here, without a user namespace: the service must switch
//! to the image's USER (uid 1000), and a user namespace made by an unprivileged bwrap maps
//! one uid only. Without root the tests say so and skip.

use std::io::{BufRead as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Podman, Ws, text};

/// Generous: no assertion is about speed, only about what eventually happens.
const PATIENCE: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `apkbuild` beside this test binary (`cargo test --workspace` builds it).
fn apkbuild() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("apkbuild");
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "SKIP: {} is not built (cargo build -p builder, or cargo test --workspace)",
            bin.display()
        );
        None
    }
}

/// Why these tests cannot run here, if they cannot.
fn unsupported() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some(
            "bubblewrap must run as root: the service switches to uid 1000, and an \
             unprivileged bwrap's user namespace maps a single uid"
                .into(),
        );
    }
    for pkg in ["s6", "execline"] {
        let ok = Command::new("dpkg")
            .args(["-s", pkg])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!(
                "Debian's `{pkg}` is not installed (ci/setup installs it)"
            ));
        }
    }
    None
}

/// A static file server for the repository, on 127.0.0.1, for the life of the test process.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Read the headers off the socket before answering.
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let file = path
                .trim_start_matches('/')
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
                .then(|| root.join(path.trim_start_matches('/')))
                .and_then(|p| fs_err::read(p).ok());
            let _ = match file {
                Some(body) => conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|()| conn.write_all(&body)),
                None => conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    url
}

/// A workspace with the s6 recipes and hello-server built into `<ws>/repo` and served.
pub(crate) struct S6Ws {
    pub(crate) ws: Ws,
    url: String,
}

pub(crate) fn setup() -> Option<S6Ws> {
    if let Some(why) = unsupported() {
        eprintln!("SKIP: {why}");
        return None;
    }
    let apkbuild = apkbuild()?;
    let ws = Ws::new()?;
    let repo = ws.path("repo");
    let out = Command::new(&apkbuild)
        .current_dir(ws.dir.path())
        .env("HOME", ws.dir.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env(
            "PACKAGER_PRIVKEY",
            testkit::fixture(&format!("keys/{}", testkit::FIXTURE_KEY)),
        )
        .arg("build-all")
        .arg(repo_root().join("s6"))
        .arg(repo_root().join("examples/recipes/main/hello-server"))
        .arg("--repodest")
        .arg(&repo)
        .arg("--no-cache")
        .output()
        .unwrap();
    eprintln!("$ apkbuild build-all s6 hello-server\n{}", text(&out));
    assert!(out.status.success(), "apkbuild build-all failed");
    let keys = ws.path("ctx/keys");
    fs_err::create_dir_all(&keys).unwrap();
    fs_err::copy(
        testkit::fixture(&format!("keys/{}.pub", testkit::FIXTURE_KEY)),
        keys.join(format!("{}.pub", testkit::FIXTURE_KEY)),
    )
    .unwrap();
    fs_err::write(
        ws.path("ctx/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nhello:x:1000:1000:hello:/home/hello:/bin/sh\n",
    )
    .unwrap();
    fs_err::write(ws.path("ctx/group"), "root:x:0:\nhello:x:1000:\n").unwrap();
    let url = serve(repo);
    Some(S6Ws { ws, url })
}

impl S6Ws {
    /// The lines every image here starts with: s6-init and hello-server from our repo.
    pub(crate) fn prelude(&self) -> String {
        format!(
            "FROM scratch\nCOPY keys /etc/apk/keys\n\
             RUN apk add --repository {}/main --keys-dir /etc/apk/keys s6-init hello-server\n\
             COPY passwd /etc/passwd\nCOPY group /etc/group\n",
            self.url
        )
    }

    /// Builds the context with `args` and exports the root file system to `<ws>/rootfs`
    /// and the OCI layout to `<ws>/oci`; returns the image config.
    fn build(&self, args: &[&str]) -> serde_json::Value {
        let rootfs = self.ws.path("rootfs");
        let oci = self.ws.path("oci");
        let mut all = vec!["build", "-t", "s6test:1"];
        all.extend_from_slice(args);
        let (r, o) = (
            format!("rootfs:{}", rootfs.display()),
            format!("oci:{}", oci.display()),
        );
        all.extend(["-o", &r, "-o", &o, "ctx"]);
        let out = self.ws.assemble(&all);
        assert!(out.status.success(), "assemble failed:\n{}", text(&out));
        oci_config(&oci)
    }
}

fn oci_config(oci: &Path) -> serde_json::Value {
    crate::support::oci_config(oci)["config"].clone()
}

/// The image started the way a container runtime starts it: `/init` as PID 1 of new PID,
/// mount, IPC, UTS and network namespaces, /proc, /dev and a /run tmpfs mounted, the image
/// ENV set, and `<ws>/out` (world-writable) at /out for the services to write to.
struct Booted {
    bwrap: Child,
    console: PathBuf,
}

fn boot(ws: &Ws, config: &serde_json::Value) -> Booted {
    boot_as(ws, config, false)
}

/// As [`boot`], or (`vm`) the way a kernel starts init: nothing mounted, no environment.
fn boot_as(ws: &Ws, config: &serde_json::Value, vm: bool) -> Booted {
    let rootfs = ws.path("rootfs");
    let out = ws.path("out");
    fs_err::create_dir_all(&out).unwrap();
    fs_err::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    fs_err::create_dir_all(rootfs.join("out")).unwrap();
    fs_err::create_dir_all(rootfs.join("run")).unwrap();
    let console = ws.path("console.log");
    let log = fs_err::File::create(&console).unwrap().into_parts().0;
    let mut c = Command::new("bwrap");
    c.args([
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--as-pid-1",
        "--die-with-parent",
    ])
    .arg("--bind")
    .arg(&rootfs)
    .arg("/");
    if !vm {
        c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run"]);
    }
    c.arg("--bind").arg(&out).arg("/out").arg("--clearenv");
    let env = if vm { None } else { config["Env"].as_array() };
    for kv in env.into_iter().flatten() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        c.args(["--setenv", k, v]);
    }
    let argv: Vec<&str> = config["Entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .chain(config["Cmd"].as_array().into_iter().flatten())
        .map(|v| v.as_str().unwrap())
        .collect();
    c.arg("--").args(&argv);
    c.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    eprintln!("$ {c:?}");
    Booted {
        bwrap: c.spawn().unwrap(),
        console,
    }
}

impl Booted {
    /// The host PID of the sandbox's PID 1 (bwrap's only child).
    fn pid1(&self) -> i32 {
        let pid = self.bwrap.id();
        wait_for("bwrap's child", || {
            let s = fs_err::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            s.split_whitespace().next()?.parse().ok()
        })
    }

    fn console(&self) -> String {
        fs_err::read_to_string(&self.console).unwrap_or_default()
    }

    /// SIGTERM to PID 1, then the exit code of the sandbox.
    fn terminate(self) -> (i32, String) {
        kill(self.pid1(), rustix::process::Signal::TERM);
        self.wait_exit()
    }

    /// The exit code of the sandbox once it ends by itself, and the console.
    fn wait_exit(mut self) -> (i32, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.bwrap.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > PATIENCE {
                let _ = self.bwrap.kill();
                panic!("PID 1 did not exit; console:\n{}", self.console());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let console = self.console();
        eprintln!("console:\n{console}");
        (status.code().unwrap_or(-1), console)
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // Killing bwrap by its PID takes the whole PID namespace with it (--die-with-parent).
        let _ = self.bwrap.kill();
        let _ = self.bwrap.wait();
    }
}

fn kill(pid: i32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Polls `f` until it gives a value, for at most [`PATIENCE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `start` lines of a hello-server log, once there are at least `n`.
fn starts(log: &Path, n: usize) -> Vec<String> {
    wait_for(&format!("{n} start line(s) in {}", log.display()), || {
        let s = fs_err::read_to_string(log).ok()?;
        let v: Vec<String> = s
            .lines()
            .filter(|l| l.starts_with("start"))
            .map(String::from)
            .collect();
        (v.len() >= n).then_some(v)
    })
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in `{line}`"))
}

/// Host PIDs of the processes named `comm` among the descendants of `ancestor`.
fn descendants_named(ancestor: i32, comm: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs_err::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // Processes come and go while we look: a missing one is simply not ours.
        let Ok(s) = fs_err::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if s.trim() != comm {
            continue;
        }
        if has_ancestor(pid, ancestor) {
            out.push(pid);
        }
    }
    out
}

/// Host PIDs of the zombies among the descendants of `ancestor`.
fn zombies_under(ancestor: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs_err::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, a)| a.split_whitespace().next());
        if state == Some("Z") && has_ancestor(pid, ancestor) {
            out.push(pid);
        }
    }
    out
}

fn parent_of(pid: i32) -> i32 {
    fs_err::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.to_string();
            after.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn has_ancestor(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    while p > 1 {
        if p == ancestor {
            return true;
        }
        p = parent_of(p);
    }
    false
}

#[test]
fn issue6_hello_server_is_supervised_as_user_with_env_and_sigterm_gives_its_exit_code() {
    let Some(t) = setup() else { return };
    t.ws.containerfile(&format!(
        "{}USER hello\nWORKDIR /home/hello\n\
         ENV HELLO_GREETING=\"hi from s6\" HELLO_EXIT_CODE=42 HELLO_PORT=0 \
         HELLO_OUT=/out/hello.log S6_KILL_GRACETIME=2000\n\
         CMD [\"/usr/bin/hello-server\"]\n",
        t.prelude()
    ));
    let config = t.build(&["--init", "s6"]);
    assert_eq!(config["Entrypoint"], serde_json::json!(["/init"]));
    assert!(
        config.get("Cmd").is_none_or(serde_json::Value::is_null),
        "{config}"
    );
    assert!(
        config.get("User").is_none_or(serde_json::Value::is_null),
        "{config}"
    );
    let labels = &config["Labels"];
    assert_eq!(labels["org.assemble.init"], "s6");
    assert_eq!(
        labels["org.assemble.init.cmd"],
        r#"["/usr/bin/hello-server"]"#
    );
    assert_eq!(labels["org.assemble.init.user"], "hello");
    let run = fs_err::read_to_string(t.ws.path("rootfs/etc/services.d/main/run")).unwrap();
    assert!(run.contains("s6-setuidgid \"hello\""), "{run}");

    let booted = boot(&t.ws, &config);
    let log = t.ws.path("out/hello.log");
    let first = starts(&log, 1).remove(0);
    assert_eq!(field(&first, "uid"), "1000", "{first}");
    assert_eq!(field(&first, "gid"), "1000", "{first}");
    assert_eq!(field(&first, "cwd"), "/home/hello", "{first}");
    assert!(first.ends_with("greeting=hi from s6"), "{first}");

    // Killed by a signal it cannot handle, the service is restarted by s6-supervise.
    let pid1 = booted.pid1();
    let victims = wait_for("hello-server under PID 1", || {
        let v = descendants_named(pid1, "hello-server");
        (!v.is_empty()).then_some(v)
    });
    kill(victims[0], rustix::process::Signal::KILL);
    let again = starts(&log, 2);
    assert_ne!(
        field(&again[0], "pid"),
        field(&again[1], "pid"),
        "{again:?}"
    );
    assert_eq!(field(&again[1], "uid"), "1000");

    // SIGTERM to PID 1: the service stops (its SIGTERM handler exits 42), /init exits 42.
    let (code, console) = booted.terminate();
    assert_eq!(code, 42, "console:\n{console}");
    let all = fs_err::read_to_string(&log).unwrap();
    assert!(all.lines().last().unwrap().starts_with("stop"), "{all}");
}

#[test]
fn issue6_podman_runs_the_init_image_and_stop_gives_the_main_service_code() {
    let Some(t) = setup() else { return };
    t.ws.containerfile(&format!(
        "{}USER hello\nENV HELLO_GREETING=hi HELLO_EXIT_CODE=42 HELLO_PORT=0\n\
         CMD [\"/usr/bin/hello-server\"]\n",
        t.prelude()
    ));
    let archive = t.ws.path("s6.tar").display().to_string();
    let out = t.ws.assemble(&[
        "build",
        "--init",
        "s6",
        "-t",
        "s6pod:1",
        "-o",
        &format!("docker-archive:{archive}"),
        "ctx",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let Some(p) = Podman::new(&t.ws) else { return };
    let podman = |args: &[&str]| p.run(args);
    if p.load(Path::new(&archive)).is_none() {
        return;
    }
    // The runtime's -e wins over the image ENV, through with-contenv.
    let o = podman(&[
        "run",
        "-d",
        "--name",
        "s6pod",
        "--network",
        "none",
        "-e",
        "HELLO_OUT=/tmp/hello.log",
        "localhost/s6pod:1",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let logs = wait_for("the service's start line in podman logs", || {
        let o = podman(&["logs", "s6pod"]);
        let s = text(&o);
        s.contains("start pid=").then_some(s)
    });
    assert!(logs.contains("uid=1000 gid=1000"), "{logs}");
    assert!(logs.contains("greeting=hi"), "{logs}");
    assert!(!logs.contains("No such file"), "{logs}");
    let o = podman(&["stop", "-t", "60", "s6pod"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = podman(&["inspect", "s6pod", "--format", "{{.State.ExitCode}}"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "42",
        "{}",
        text(&o)
    );
    let logs = text(&podman(&["logs", "s6pod"]));
    assert!(logs.contains("stop pid="), "{logs}");
    podman(&["rm", "-f", "s6pod"]);
}

#[test]
fn issue14_podman_run_with_a_command_runs_it_as_the_image_user_and_exits_with_its_code() {
    let Some(t) = setup() else { return };
    t.ws.containerfile(&format!(
        "{}COPY busybox /bin/busybox\nUSER hello\nWORKDIR /home/hello\nENV HELLO_PORT=0\n\
         CMD [\"/usr/bin/hello-server\"]\n",
        t.prelude()
    ));
    let archive = t.ws.path("s6cmd.tar");
    let out = t.ws.assemble(&[
        "build",
        "--init",
        "s6",
        "-t",
        "s6cmd:1",
        "-o",
        &format!("docker-archive:{}", archive.display()),
        "ctx",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let Some(p) = Podman::new(&t.ws) else { return };
    if p.load(&archive).is_none() {
        return;
    }
    // As `docker run IMAGE CMD`: the command replaces the image's CMD (the main service
    // does not start), runs as USER in WORKDIR, and its exit code is the container's.
    let o = p.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/s6cmd:1",
        "/bin/busybox",
        "sh",
        "-c",
        "echo \"uid=$(/bin/busybox id -u) gid=$(/bin/busybox id -g) pwd=$(pwd)\"; exit 7",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(7), "{out}");
    assert!(out.contains("uid=1000 gid=1000 pwd=/home/hello"), "{out}");
    assert!(!out.contains("start pid="), "{out}");
}

#[test]
fn issue6_as_a_vm_init_it_mounts_brings_up_lo_sets_the_hostname_and_powers_off() {
    let Some(t) = setup() else { return };
    fs_err::write(t.ws.path("ctx/hostname"), "vmhost\n").unwrap();
    t.ws.containerfile(&format!(
        "{}COPY hostname /etc/hostname\nUSER hello\n\
         ENV HELLO_GREETING=\"from the image\" HELLO_EXIT_CODE=42 HELLO_PORT=8080 \
         HELLO_OUT=/out/hello.log\n\
         CMD [\"/usr/bin/hello-server\"]\n",
        t.prelude()
    ));
    let config = t.build(&["--init", "s6"]);
    // No /proc, no environment: /init takes itself for a VM's init. The image ENV comes
    // from /etc/s6-init/env.
    let booted = boot_as(&t.ws, &config, true);
    let first = starts(&t.ws.path("out/hello.log"), 1).remove(0);
    assert_eq!(field(&first, "host"), "vmhost", "{first}");
    assert_eq!(field(&first, "uid"), "1000", "{first}");
    assert!(first.ends_with("greeting=from the image"), "{first}");
    let pid1 = booted.pid1();
    let mounts = fs_err::read_to_string(format!("/proc/{pid1}/mountinfo")).unwrap();
    for (at, fs) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/run", "tmpfs"),
    ] {
        assert!(
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let sep = f.iter().position(|w| *w == "-").unwrap_or(0);
                f.get(4) == Some(&at) && f.get(sep + 1) == Some(&fs)
            }),
            "{fs} on {at} missing:\n{mounts}"
        );
    }
    // Through PID 1's root: its own /sys shows its own network namespace.
    let flags =
        fs_err::read_to_string(format!("/proc/{pid1}/root/sys/class/net/lo/flags")).unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up (flags {flags:#x})");
    // The main service ends: a VM powers off. In a PID namespace the kernel turns
    // reboot(RB_POWER_OFF) into SIGINT for its init, which bwrap reports as 128 + 2.
    let (code, console) = booted.terminate();
    assert!(
        console.contains("main service exited 42: powering off"),
        "{console}"
    );
    assert_eq!(code, 130, "{console}");
}

#[test]
fn issue6_service_dirs_added_by_the_containerfile_are_all_supervised() {
    let Some(t) = setup() else { return };
    // Two services, a cont-init.d and a cont-finish.d script, in execline: the image has no
    // shell. The label opts in without --init; there is no CMD, so no main service.
    let etc = t.ws.path("ctx/etc");
    for name in ["one", "two"] {
        let dir = etc.join("services.d").join(name);
        fs_err::create_dir_all(&dir).unwrap();
        write_exec(
            &dir.join("run"),
            &format!(
                "#!/usr/bin/execlineb -P\nwith-contenv\nexport HELLO_OUT /out/{name}.log\n\
                 export HELLO_GREETING {name}\nexport HELLO_IGNORE_TERM {}\n\
                 s6-setuidgid hello\n/usr/bin/hello-server\n",
                // The second one ignores SIGTERM: S6_SERVICES_GRACETIME ends it.
                u8::from(name == "two")
            ),
        );
    }
    // Orphans: the middle process exits at once, so its child is re-parented to PID 1,
    // which must reap it when it exits.
    fs_err::create_dir_all(etc.join("cont-init.d")).unwrap();
    write_exec(
        &etc.join("cont-init.d/20-orphans"),
        "#!/usr/bin/execlineb -P\n\
         background { background { exit 0 } }\n\
         background { background { exit 0 } }\n\
         exit 0\n",
    );
    for (dir, file) in [("cont-init.d", "init-ran"), ("cont-finish.d", "finish-ran")] {
        fs_err::create_dir_all(etc.join(dir)).unwrap();
        write_exec(
            &etc.join(dir).join("10-mark"),
            &format!("#!/usr/bin/execlineb -P\nredirfd -a 1 /out/{file} exit 0\n"),
        );
    }
    t.ws.containerfile(&format!(
        "{}ADD etc /etc\nENV HELLO_PORT=0 S6_SERVICES_GRACETIME=500\n\
         LABEL org.assemble.init=s6\n",
        t.prelude()
    ));
    let config = t.build(&[]);
    assert_eq!(config["Entrypoint"], serde_json::json!(["/init"]));
    assert!(!t.ws.path("rootfs/etc/services.d/main").exists());
    // Reproducible: every step again, same SOURCE_DATE_EPOCH, same image digest.
    let again =
        t.ws.assemble(&["build", "--no-cache", "-o", "oci:oci2", "ctx"]);
    assert!(again.status.success(), "{}", text(&again));
    let digest = |dir: &str| {
        let index: serde_json::Value =
            serde_json::from_slice(&fs_err::read(t.ws.path(dir).join("index.json")).unwrap())
                .unwrap();
        index["manifests"][0]["digest"].clone()
    };
    assert_eq!(
        digest("oci"),
        digest("oci2"),
        "two builds gave different images"
    );

    let booted = boot(&t.ws, &config);
    let one = starts(&t.ws.path("out/one.log"), 1);
    let two = starts(&t.ws.path("out/two.log"), 1);
    assert!(one[0].ends_with("greeting=one") && two[0].ends_with("greeting=two"));
    assert!(t.ws.path("out/init-ran").exists());
    let pid1 = booted.pid1();
    wait_for("no zombie left under PID 1", || {
        zombies_under(pid1).is_empty().then_some(())
    });
    let two_pid = wait_for("the second service", || {
        descendants_named(pid1, "hello-server")
            .into_iter()
            .find(|&p| {
                fs_err::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| e.split(|&b| b == 0).any(|kv| kv == b"HELLO_GREETING=two"))
            })
    });
    kill(two_pid, rustix::process::Signal::KILL);
    starts(&t.ws.path("out/two.log"), 2);
    let (code, console) = booted.terminate();
    assert_eq!(code, 0, "console:\n{console}");
    // One stopped on SIGTERM; the other, deaf to it, was killed after the grace time.
    let one = fs_err::read_to_string(t.ws.path("out/one.log")).unwrap();
    assert!(one.lines().last().unwrap().starts_with("stop"), "{one}");
    let two = fs_err::read_to_string(t.ws.path("out/two.log")).unwrap();
    assert!(two.lines().last().unwrap().starts_with("start"), "{two}");
    assert!(
        t.ws.path("out/finish-ran").exists(),
        "cont-finish.d did not run"
    );
}

#[test]
fn issue6_cont_init_failures_follow_s6_behaviour_if_stage2_fails_and_a_cmd_gives_the_code() {
    let Some(t) = setup() else { return };
    let dir = t.ws.path("ctx/etc/cont-init.d");
    fs_err::create_dir_all(&dir).unwrap();
    write_exec(&dir.join("10-fail"), "#!/usr/bin/execlineb -P\nexit 3\n");
    // s6-overlay's CMD mode: /init's arguments are the main program (no --init here).
    t.ws.containerfile(&format!(
        "{}ADD etc /etc\nENV S6_BEHAVIOUR_IF_STAGE2_FAILS=1\n\
         ENTRYPOINT [\"/init\"]\nCMD [\"exit\", \"7\"]\n",
        t.prelude()
    ));
    let mut config = t.build(&[]);
    let (code, console) = boot(&t.ws, &config).wait_exit();
    assert!(
        console.contains("warning: cont-init.d failed (3), going on"),
        "{console}"
    );
    assert_eq!(code, 7, "{console}");
    config["Env"] = serde_json::json!(["S6_BEHAVIOUR_IF_STAGE2_FAILS=2"]);
    let (code, console) = boot(&t.ws, &config).wait_exit();
    assert!(
        console.contains("cont-init.d failed (3): stopping"),
        "{console}"
    );
    assert_eq!(code, 3, "{console}");
}

#[test]
fn issue6_a_shell_form_cmd_runs_through_the_images_shell() {
    let Some(t) = setup() else { return };
    // The image has no /bin/sh: SHELL makes execlineb the shell of the shell form.
    t.ws.containerfile(&format!(
        "{}SHELL [\"/usr/bin/execlineb\", \"-Pc\"]\nWORKDIR /srv/app\nCMD exit 5\n",
        t.prelude()
    ));
    let config = t.build(&["--init", "s6"]);
    assert_eq!(
        config["Labels"]["org.assemble.init.cmd"],
        r#"["/usr/bin/execlineb","-Pc","exit 5"]"#
    );
    let run = fs_err::read_to_string(t.ws.path("rootfs/etc/services.d/main/run")).unwrap();
    assert!(
        run.ends_with("cd \"/srv/app\"\n\"/usr/bin/execlineb\" \"-Pc\" \"exit 5\"\n"),
        "{run}"
    );
    // It exits by itself: everything stops with its code.
    let (code, console) = boot(&t.ws, &config).wait_exit();
    assert_eq!(code, 5, "{console}");
}

#[test]
fn issue6_init_without_s6_init_says_which_package_to_add() {
    let Some(ws) = Ws::new() else { return };
    ws.containerfile("FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\"]\n");
    let out = ws.assemble(&["build", "--init", "s6", "ctx"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("the image has no /init"), "{t}");
    assert!(t.contains("add the `s6-init` package"), "{t}");
}

fn write_exec(path: &Path, text: &str) {
    fs_err::write(path, text).unwrap();
    fs_err::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}
