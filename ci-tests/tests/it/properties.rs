//! Properties of the bump scripts over generated inputs: only the targeted values change,
//! everything else stays byte for byte, and a second run changes nothing. Each case runs
//! the real script, so the case count is kept small.

use proptest::prelude::*;

use crate::support::{read, script, write};

/// apk versions: 1.2.3, 2.0a, 1.0_rc1, 3.1_p2…
fn apk_version() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(0u32..100, 1..4),
        prop::option::of("[a-z]"),
        prop::option::of((
            prop::sample::select(vec!["alpha", "beta", "rc", "p", "git"]),
            0u32..20,
        )),
    )
        .prop_map(|(nums, letter, suffix)| {
            let mut v = nums
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".");
            if let Some(l) = letter {
                v.push_str(&l);
            }
            if let Some((s, n)) = suffix {
                v.push_str(&format!("_{s}{n}"));
            }
            v
        })
}

/// Lines that are neither pkgver= nor pkgrel= at the start, nor ARG/apk add lines.
fn other_lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[ #a-z_=\"$.{}()\t-]{0,30}", 0..6).prop_map(|ls| {
        ls.into_iter()
            .filter(|l| !l.starts_with("pkgver=") && !l.starts_with("pkgrel="))
            .filter(|l| {
                !l.to_ascii_uppercase().starts_with("ARG")
                    && !l.to_ascii_uppercase().starts_with("RUN")
            })
            .filter(|l| !l.trim_end().ends_with('\\'))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bump_apkbuild_changes_only_pkgver_and_pkgrel(
        old in apk_version(),
        new in apk_version(),
        rel in 0u32..50,
        before in other_lines(),
        after in other_lines(),
    ) {
        let t = tempfile::tempdir().unwrap();
        let text = format!(
            "{}pkgver={old}\npkgrel={rel}\n{}",
            before.iter().map(|l| format!("{l}\n")).collect::<String>(),
            after.iter().map(|l| format!("{l}\n")).collect::<String>(),
        );
        let f = write(t.path(), "APKBUILD", &text);
        script("bump-apkbuild", t.path()).args(["--no-checksum", &new]).assert().success();
        let want_rel = if old == new { rel } else { 0 };
        let want = text.replace(
            &format!("pkgver={old}\npkgrel={rel}\n"),
            &format!("pkgver={new}\npkgrel={want_rel}\n"),
        );
        prop_assert_eq!(read(&f), want.clone());
        script("bump-apkbuild", t.path()).args(["--no-checksum", &new]).assert().success();
        prop_assert_eq!(read(&f), want);
    }

    #[test]
    fn bump_containerfile_changes_only_the_pin(
        name in "[a-z][a-z0-9-]{0,10}",
        old in apk_version(),
        new in apk_version(),
        rel in 0u32..9,
        before in other_lines(),
    ) {
        let t = tempfile::tempdir().unwrap();
        let head: String = before.iter().map(|l| format!("{l}\n")).collect();
        let text = format!("{head}RUN apk add --no-cache \\\n  {name}-doc={old}-r{rel} \\\n  {name}={old}-r{rel}\n");
        let f = write(t.path(), "Containerfile", &text);
        let value = format!("{new}-r{rel}");
        script("bump-containerfile", t.path()).args(["-p", &name, &value]).assert().success();
        let want = format!("{head}RUN apk add --no-cache \\\n  {name}-doc={old}-r{rel} \\\n  {name}={value}\n");
        prop_assert_eq!(read(&f), want.clone());
        script("bump-containerfile", t.path()).args(["-p", &name, &value]).assert().success();
        prop_assert_eq!(read(&f), want);
    }
}
