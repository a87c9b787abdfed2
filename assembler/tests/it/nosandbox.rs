//! bubblewrap is needed only by the steps that run commands: a build of COPY and native
//! `apk add` steps works without it, and the first step that needs it says what to install.

use testkit::repo::PkgSpec;

use crate::support::{Ws, local_repo, text};

#[test]
fn a_build_without_sandbox_steps_needs_no_bwrap() {
    let Some(ws) = Ws::new() else { return };
    local_repo(
        &ws,
        &[PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", "library a\n")],
    );
    // A PATH holding nothing: no bwrap anywhere.
    let empty = ws.path("empty-path");
    fs_err::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    ws.containerfile(
        "FROM scratch\nCOPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys liba\n",
    );
    let out = ws.assemble_vars(
        &["-t", "nob", "-o", "rootfs:nob", "ctx"],
        &[("PATH", &path)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws.path("nob/usr/lib/liba.so.1").is_file());

    ws.containerfile(
        "FROM scratch\nCOPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X /repo --keys-dir /keys liba\nRUN echo hi\n",
    );
    let out = ws.assemble_vars(&["-t", "nob", "ctx"], &[("PATH", &path)]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("step 5 `RUN echo hi` runs in the bubblewrap sandbox"),
        "{log}"
    );
    assert!(log.contains("`bwrap` is not installed"), "{log}");
    assert!(log.contains("apt-get install bubblewrap"), "{log}");
}

#[test]
fn an_apk_add_with_build_arguments_is_still_native() {
    let Some(ws) = Ws::new() else { return };
    local_repo(
        &ws,
        &[
            PkgSpec::new("liba", "1.0-r0").file("usr/lib/liba.so.1", "library a 1\n"),
            PkgSpec::new("liba", "2.0-r0").file("usr/lib/liba.so.2", "library a 2\n"),
        ],
    );
    let empty = ws.path("empty-path");
    fs_err::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    // The pin `ci/bump-containerfile` rewrites, and a repository named by ENV: no shell
    // and no bwrap are needed, since the variables are expanded as the shell would.
    ws.containerfile(
        "FROM scratch\nARG TAG=1.0-r0\nENV REPO=/repo\nCOPY repo /repo\nCOPY keys /keys\n\
         RUN apk add --no-cache -X \"$REPO\" --keys-dir /keys liba=${TAG}\n",
    );
    let out = ws.assemble_vars(
        &["-t", "arg", "-o", "rootfs:arg1", "ctx"],
        &[("PATH", &path)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws.path("arg1/usr/lib/liba.so.1").is_file());
    assert!(!ws.path("arg1/usr/lib/liba.so.2").exists());

    let out = ws.assemble_vars(
        &[
            "-t",
            "arg",
            "--build-arg",
            "TAG=2.0-r0",
            "-o",
            "rootfs:arg2",
            "ctx",
        ],
        &[("PATH", &path)],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws.path("arg2/usr/lib/liba.so.2").is_file());
}
