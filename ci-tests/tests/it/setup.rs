//! `ci/setup` never removes or downgrades what the machine has (issue 15: installing
//! qemu-system-x86 removed the host's newer qemu-utils). Run with an `apt-get` whose
//! simulated plans are given, that records what it is asked to really install, a `dpkg`
//! answering which packages are present (versions compared by the real dpkg), and the
//! other tools present, so only the apt decisions are under test.

use crate::support::{ci_dir, executable, write};

/// `apt-get`: `-s` prints the plan in `$PLANS/<first package>` (or a plain install); a real
/// install is recorded in `$CALLS`.
const FAKE_APT: &str = r#"#!/bin/sh
case " $* " in
  *" -s "*)
    for a in "$@"; do case $a in -*|install) ;; *) pkg=$a; break ;; esac; done
    if [ -f "$PLANS/$pkg" ]; then cat "$PLANS/$pkg"; exit 0; fi
    echo "Inst $pkg (1.0 Debian:12 [amd64])"; exit 0 ;;
  *" update "*) exit 0 ;;
  *) echo "apt-get $*" >> "$CALLS" ;;
esac
"#;

/// `dpkg -s` knows only what `$PRESENT` lists; `--compare-versions` is the real one.
const FAKE_DPKG: &str = r#"#!/bin/sh
if [ "$1" = -s ]; then
  case " $PRESENT " in *" $2 "*) exit 0 ;; *) exit 1 ;; esac
fi
exec /usr/bin/dpkg "$@"
"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A machine where everything but `missing` is installed.
    fn new(missing: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let exe = |name: &str, text: &str| executable(&write(&bin, name, text));
        exe("apt-get", FAKE_APT);
        exe("dpkg", FAKE_DPKG);
        for tool in ["node", "npm", "s3s-fs", "cargo"] {
            exe(tool, "#!/bin/sh\nexit 0\n");
        }
        exe("gitlab-ci-local", "#!/bin/sh\necho 4.65.1\n");
        exe("rustup", "#!/bin/sh\nprintf 'rustfmt\\nclippy\\n'\n");
        exe("id", "#!/bin/sh\necho 0\n");
        let all = "tar gzip bubblewrap uidmap gcc make libc6-dev binutils patch pkg-config \
                   xz-utils bzip2 zstd zip skopeo umoci podman runc docker-registry \
                   busybox-static curl shellcheck openssl jq rsync s6 execline e2fsprogs \
                   squashfs-tools strace qemu-system-x86 linux-image-amd64";
        let present: Vec<&str> = all
            .split_whitespace()
            .filter(|p| !missing.contains(p))
            .collect();
        write(dir.path(), "present", &present.join(" "));
        fs_err::create_dir_all(dir.path().join("plans")).unwrap();
        Self { dir }
    }

    fn plan(&self, pkg: &str, text: &str) {
        write(&self.dir.path().join("plans"), pkg, text);
    }

    /// (success, stderr, the real installs asked for).
    fn run(&self) -> (bool, String, String) {
        let d = self.dir.path();
        let out = std::process::Command::new("sh")
            .arg(ci_dir().join("setup"))
            .env("PATH", format!("{}:/usr/bin:/bin", d.join("bin").display()))
            .env(
                "PRESENT",
                fs_err::read_to_string(d.join("present")).unwrap(),
            )
            .env("PLANS", d.join("plans"))
            .env("CALLS", d.join("calls"))
            .output()
            .unwrap();
        let calls = fs_err::read_to_string(d.join("calls")).unwrap_or_default();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), err, calls)
    }
}

#[test]
fn issue15_setup_installs_missing_packages_without_removing() {
    let s = Setup::new(&["jq"]);
    let (ok, err, calls) = s.run();
    assert!(ok, "{err}");
    assert_eq!(
        calls.trim(),
        "apt-get install -y -qq --no-install-recommends --no-remove jq"
    );
}

#[test]
fn issue15_optional_qemu_that_would_remove_a_package_is_skipped() {
    let s = Setup::new(&["qemu-system-x86"]);
    s.plan(
        "qemu-system-x86",
        "Remv qemu-utils [1:10.0.2+ds-2~bpo12+1]\nInst qemu-system-x86 (1:7.2+dfsg-7 Debian:12 [amd64])\n",
    );
    let (ok, err, calls) = s.run();
    assert!(ok, "optional: setup goes on\n{err}");
    assert_eq!(calls, "", "nothing installed");
    assert!(err.contains("it would remove qemu-utils"), "{err}");
}

#[test]
fn issue15_required_package_that_would_downgrade_stops_setup() {
    let s = Setup::new(&["skopeo"]);
    s.plan(
        "skopeo",
        "Inst libgpgme11 [1.20.0-1~bpo12+1] (1.18.0-3 Debian:12 [amd64])\nInst skopeo (1.9.3 Debian:12 [amd64])\n",
    );
    let (ok, err, calls) = s.run();
    assert!(!ok);
    assert_eq!(calls, "", "nothing installed");
    assert!(
        err.contains("it would downgrade libgpgme11 from 1.20.0-1~bpo12+1 to 1.18.0-3"),
        "{err}"
    );
}
