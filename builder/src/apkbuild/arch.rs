//! Architectures as abuild names them: `$CARCH` and friends, and the GNU triplets its
//! `functions.sh` maps them to (`arch_to_triplet`), so recipes that test `$CBUILD_ARCH`
//! or pass `--build=$CBUILD --host=$CHOST` see what abuild gives them.

/// The GNU triplet of an Alpine arch (`x86_64` → `x86_64-alpine-linux-musl`).
pub fn triplet(arch: &str) -> String {
    let t = match arch {
        "armel" => "armv5-alpine-linux-musleabi",
        "armhf" => "armv6-alpine-linux-musleabihf",
        "armv7" => "armv7-alpine-linux-musleabihf",
        "ppc" => "powerpc-alpine-linux-musl",
        "ppc64" => "powerpc64-alpine-linux-musl",
        "ppc64le" => "powerpc64le-alpine-linux-musl",
        "sh2eb" => "sh2eb-alpine-linux-muslfdpic",
        "x86" => "i586-alpine-linux-musl",
        other => return format!("{other}-alpine-linux-musl"),
    };
    t.to_string()
}

/// abuild's derived variables for building packages of `carch` on a `cbuild_arch`
/// machine: `$CARCH`, `$CBUILD`, `$CHOST`, `$CTARGET`, `$CBUILD_ARCH`, `$CTARGET_ARCH`,
/// `$CLIBC`, `$CTARGET_LIBC`.
pub fn variables(carch: &str, cbuild_arch: &str) -> Vec<(String, String)> {
    let chost = triplet(carch);
    [
        ("CARCH", carch.to_string()),
        ("CBUILD", triplet(cbuild_arch)),
        ("CHOST", chost.clone()),
        ("CTARGET", chost),
        ("CBUILD_ARCH", cbuild_arch.to_string()),
        ("CTARGET_ARCH", carch.to_string()),
        ("CLIBC", "musl".to_string()),
        ("CTARGET_LIBC", "musl".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_follow_abuild() {
        assert_eq!(triplet("x86_64"), "x86_64-alpine-linux-musl");
        assert_eq!(triplet("x86"), "i586-alpine-linux-musl");
        assert_eq!(triplet("armv7"), "armv7-alpine-linux-musleabihf");
        assert_eq!(triplet("aarch64"), "aarch64-alpine-linux-musl");
    }

    #[test]
    fn cross_builds_differ_in_cbuild_only() {
        let v = variables("aarch64", "x86_64");
        let get = |k: &str| v.iter().find(|(n, _)| n == k).unwrap().1.as_str();
        assert_eq!(get("CBUILD"), "x86_64-alpine-linux-musl");
        assert_eq!(get("CHOST"), "aarch64-alpine-linux-musl");
        assert_eq!(get("CBUILD_ARCH"), "x86_64");
        assert_eq!(get("CTARGET_ARCH"), "aarch64");
    }
}
