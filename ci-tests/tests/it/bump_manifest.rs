//! `ci/bump-manifest`: kustomize `images:` entries and plain `image:` lines.

use predicates::str::contains;

use crate::support::{entries, read, script, write};

const IMAGE: &str = "registry.example.com/demo/hello";

const KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: registry.example.com/demo/other
    newTag: \"9.9\"
  - name: registry.example.com/demo/hello
    newTag: \"1.0.0\"
  - name: \"registry.example.com/demo/untagged\"
    newName: registry.example.com/demo/renamed
labels:
  - pairs:
      newTag: not-an-image
";

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: hello
          image: \"registry.example.com/demo/hello:1.0.0\"   # pinned by CI
        - name: by-digest
          image: registry.example.com/demo/hello@sha256:0123abcd
        - image: registry.example.com/demo/hello
        - image: registry.example.com/demo/hello-other:1.0.0
";

#[test]
fn kustomization_new_tag() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "kustomization.yaml", KUSTOMIZATION);
    script("bump-manifest", t.path())
        .args([IMAGE, "1.1.0"])
        .assert()
        .success();
    assert_eq!(
        read(&f),
        KUSTOMIZATION.replace("newTag: \"1.0.0\"", "newTag: \"1.1.0\"")
    );
    script("bump-manifest", t.path())
        .args([IMAGE, "1.1.0"])
        .assert()
        .success()
        .stderr(contains("already at 1.1.0"));
    assert_eq!(entries(t.path()), ["kustomization.yaml"]);
}

#[test]
fn kustomization_entry_without_new_tag_gets_one() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "kustomization.yml", KUSTOMIZATION);
    script("bump-manifest", t.path())
        .args(["registry.example.com/demo/untagged", "v2"])
        .assert()
        .success();
    assert_eq!(
        read(&f),
        KUSTOMIZATION.replace(
            "  - name: \"registry.example.com/demo/untagged\"\n",
            "  - name: \"registry.example.com/demo/untagged\"\n    newTag: \"v2\"\n"
        )
    );
    // A second run finds the newTag it added and leaves it.
    let once = read(&f);
    script("bump-manifest", t.path())
        .args(["registry.example.com/demo/untagged", "v2"])
        .assert()
        .success();
    assert_eq!(read(&f), once);
}

#[test]
fn plain_image_lines() {
    let t = tempfile::tempdir().unwrap();
    let f = write(t.path(), "deploy/deployment.yaml", DEPLOYMENT);
    script("bump-manifest", t.path())
        .args(["-C", "deploy", IMAGE, "1.2.0", "deployment.yaml"])
        .assert()
        .success();
    assert_eq!(
        read(&f),
        DEPLOYMENT
            .replace("hello:1.0.0\"", "hello:1.2.0\"")
            .replace("hello@sha256:0123abcd", "hello:1.2.0")
            .replace(
                "- image: registry.example.com/demo/hello\n",
                "- image: registry.example.com/demo/hello:1.2.0\n"
            )
    );
    assert!(read(&f).contains("hello-other:1.0.0"));
}

#[test]
fn bad_input_and_no_match_are_errors() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "deployment.yaml", DEPLOYMENT);
    let cases: &[(&[&str], i32, &str)] = &[
        (&[], 2, "need IMAGE and TAG"),
        (&[IMAGE], 2, "need IMAGE and TAG"),
        (&["Registry/App", "1"], 2, "is not an image name"),
        (
            &["registry.example.com/demo/hello:1", "2"],
            2,
            "without a tag",
        ),
        (&[IMAGE, "-bad"], 2, "is not a tag"),
        (&[IMAGE, ".bad"], 2, "is not a tag"),
        (&[IMAGE, "1/2"], 2, "is not a tag"),
        (&[IMAGE, "1.0"], 1, "no kustomization.yaml"),
        (
            &[IMAGE, "1.0", "nope.yaml"],
            1,
            "`nope.yaml` does not exist",
        ),
        (
            &["registry.example.com/demo/absent", "1", "deployment.yaml"],
            1,
            "check IMAGE",
        ),
    ];
    for (args, code, msg) in cases {
        script("bump-manifest", t.path())
            .args(*args)
            .assert()
            .code(*code)
            .stderr(contains(*msg));
    }
    assert_eq!(read(&t.path().join("deployment.yaml")), DEPLOYMENT);
    assert_eq!(entries(t.path()), ["deployment.yaml"]);
}
