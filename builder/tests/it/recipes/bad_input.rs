//! Bad input: non-zero exit, a clear message, and the repository left as it was.

use super::*;

#[test]
fn missing_and_wrong_sha512sums_name_the_file_and_the_fix() {
    fails_leaving_repo_unchanged(
        "missing",
        &format!("{HEAD}source=\"data.txt\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"),
        &[("data.txt", b"x\n")],
        "data.txt is missing in checksums: run `apkbuild checksum",
    );
    fails_leaving_repo_unchanged(
        "wrong",
        &format!(
            "{HEAD}source=\"data.txt\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{}  data.txt\"\n",
            "ab".repeat(64)
        ),
        &[("data.txt", b"x\n")],
        "sha512 of `data.txt` does not match sha512sums",
    );
}

#[test]
fn failing_build_says_which_phase_and_shows_its_output() {
    fails_leaving_repo_unchanged(
        "build",
        &format!(
            "{HEAD}build() {{ echo compiling-things; echo oops >&2; false; }}\npackage() {{ mkdir -p \"$pkgdir\"; }}\n"
        ),
        &[],
        "build() failed (exit status: 1); last lines of its output:\n  | compiling-things\n  | oops",
    );
}

#[test]
fn syntax_error_reports_file_and_line() {
    fails_leaving_repo_unchanged(
        "syntax",
        &format!("{HEAD}build() {{\n  if true; then\n}}\n"),
        &[],
        "APKBUILD:10: syntax error: unexpected \"}\"\n   |\n10 | }\n   |",
    );
}

#[test]
fn unreachable_source_url_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails_leaving_repo_unchanged(
        "unreachable",
        &format!(
            "{HEAD}source=\"x.tar.gz::http://127.0.0.1:{port}/x.tar.gz\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{}  x.tar.gz\"\n",
            "ab".repeat(64)
        ),
        &[],
        &format!("failed to fetch `http://127.0.0.1:{port}/x.tar.gz`"),
    );
}

#[test]
fn tarball_with_dotdot_entries_is_refused() {
    // Written by hand: tar tools refuse to create such entries.
    let mut tar = Vec::new();
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escaped.tx");
    header.set_size(3);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(b"hi\n");
    tar.resize(512 * 2, 0);
    tar.resize(512 * 4, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let sum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha512::digest(&gz))
    };
    fails_leaving_repo_unchanged(
        "dotdot",
        &format!(
            "{HEAD}source=\"evil.tar.gz\"\npackage() {{ mkdir -p \"$pkgdir\"; }}\nsha512sums=\"{sum}  evil.tar.gz\"\n"
        ),
        &[("evil.tar.gz", &gz)],
        "leaves the source directory",
    );
}
