//! apk's `fnmatch` patterns with `*` and `?`: trigger globs (apk-format.md §1.9, matched
//! against changed directories) and the name filters of `apk search`, `info` and
//! `version` (`FNM_CASEFOLD`). Hand-written: a dozen lines, and the `glob` crate matches
//! paths (`*` stops at `/`), which apk's triggers and name filters do not.

/// Whether `text` matches `pattern` (`*` any run of bytes, `?` one byte).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// [`matches`] ignoring ASCII case, as `fnmatch` with `FNM_CASEFOLD`.
pub fn matches_casefold(pattern: &str, text: &str) -> bool {
    matches(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_globs_and_name_filters() {
        assert!(matches("/usr/share/fonts/*", "/usr/share/fonts/misc"));
        assert!(!matches("/usr/share/fonts/*", "/usr/share/icons"));
        assert!(matches(
            "/usr/lib/gdk-pixbuf-?.0/*",
            "/usr/lib/gdk-pixbuf-2.0/loaders"
        ));
        assert!(matches_casefold("*Busy*", "busybox-extras"));
        assert!(!matches_casefold("*busy", "busybox"));
    }
}
