//! apk version strings: the grammar, the ordering and fuzzy (`~`) matching.
//!
//! This follows apk-tools 3.x `src/version.c` as described in `shared/docs/apk-format.md`
//! §5.1 (grammar) and §5.2 (comparison), and agrees with every line of apk-tools' own
//! table `test/unit/version.data` (copied to `shared/fixtures/apk-reference/version.data`,
//! checked by the tests below).
//!
//! A version is read as a list of tokens: the first number, then `.`numbers, one letter,
//! `_`suffixes with optional numbers, a `~`commit hash and a `-r`revision. Comparison walks
//! both token lists together and never validates first: apk compares invalid strings too
//! (`1.0 < 1.0bc`), so [`compare`] is total over all strings, while [`is_valid`] and
//! [`Version`] apply the strict 3.x grammar.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Token kinds in grammar order. The order matters: it bounds which token may follow
/// which, and when one list runs out the side whose next kind sorts later is smaller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    Invalid,
}

/// Suffix ranks, in sort order. The missing "no suffix" rank sits between `Rc` and `Cvs`,
/// which is why pre-release suffixes get special treatment in [`compare_tokens`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

impl Suffix {
    /// Only the exact words are suffixes; `_post1` or `_foo` make a version invalid.
    fn from_word(word: &[u8]) -> Option<Self> {
        Some(match word {
            b"alpha" => Self::Alpha,
            b"beta" => Self::Beta,
            b"pre" => Self::Pre,
            b"rc" => Self::Rc,
            b"cvs" => Self::Cvs,
            b"svn" => Self::Svn,
            b"git" => Self::Git,
            b"hg" => Self::Hg,
            b"p" => Self::P,
            _ => return None,
        })
    }

    fn is_pre_release(self) -> bool {
        self <= Self::Rc
    }
}

/// The current token of a [`Tokens`] walk.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    /// The token's bytes without its leading separator (`.`, `_`, `~`, `-r`).
    text: &'a [u8],
    /// Numeric value of number tokens. apk parses into a `uint64_t` without overflow
    /// checks, so absurdly long numbers wrap; we do the same to order them as apk does.
    number: u64,
    suffix: Option<Suffix>,
}

/// A cursor over one version string.
struct Tokens<'a> {
    rest: &'a [u8],
    current: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        let mut tokens = Tokens {
            rest: version.as_bytes(),
            current: Token {
                kind: Kind::InitialDigit,
                text: &[],
                number: 0,
                suffix: None,
            },
        };
        tokens.take_digits(Kind::InitialDigit);
        tokens
    }

    fn kind(&self) -> Kind {
        self.current.kind
    }

    /// Consumes a run of digits as a token of `kind`; an empty run is invalid.
    fn take_digits(&mut self, kind: Kind) {
        let len = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.rest.split_at(len);
        self.rest = rest;
        let number = digits.iter().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        self.current = Token {
            kind: if digits.is_empty() {
                Kind::Invalid
            } else {
                kind
            },
            text: digits,
            number,
            suffix: None,
        };
    }

    /// Consumes the bytes matching `accept` as a token of `kind`; an empty run is invalid.
    fn take_run(&mut self, kind: Kind, accept: fn(&u8) -> bool) {
        let len = self.rest.iter().take_while(|b| accept(b)).count();
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        self.current = Token {
            kind: if text.is_empty() { Kind::Invalid } else { kind },
            text,
            number: 0,
            suffix: None,
        };
    }

    /// Moves to the next token. The first byte decides the kind; each kind may only follow
    /// certain earlier kinds, which is the whole grammar.
    fn advance(&mut self) {
        let previous = self.current.kind;
        let Some(&first) = self.rest.first() else {
            self.current.kind = Kind::End;
            return;
        };
        match first {
            b'a'..=b'z' if previous <= Kind::Digit => {
                let (letter, rest) = self.rest.split_at(1);
                self.rest = rest;
                self.current = Token {
                    kind: Kind::Letter,
                    text: letter,
                    number: 0,
                    suffix: None,
                };
            }
            b'.' if previous <= Kind::Digit => {
                self.rest = &self.rest[1..];
                self.take_digits(Kind::Digit);
            }
            b'0'..=b'9' if previous == Kind::Suffix => self.take_digits(Kind::SuffixNumber),
            b'_' if previous <= Kind::SuffixNumber => {
                self.rest = &self.rest[1..];
                self.take_run(Kind::Suffix, u8::is_ascii_lowercase);
                self.current.suffix = Suffix::from_word(self.current.text);
                if self.current.suffix.is_none() {
                    self.current.kind = Kind::Invalid;
                }
            }
            b'~' if previous < Kind::CommitHash => {
                self.rest = &self.rest[1..];
                // Only lowercase hex: `~1234xbcd` and `~ABC` are invalid.
                self.take_run(Kind::CommitHash, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            }
            b'-' if previous < Kind::Revision && self.rest.starts_with(b"-r") => {
                self.rest = &self.rest[2..];
                self.take_digits(Kind::Revision);
            }
            _ => self.current.kind = Kind::Invalid,
        }
    }
}

/// Compares two tokens of the same kind.
fn compare_tokens(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        // A later component with a leading zero compares as a string (Gentoo rule), so
        // `1.01 < 1.1` and `8.2.0 < 8.2.001`. The first component is always numeric.
        Kind::Digit if a.text.first() == Some(&b'0') || b.text.first() == Some(&b'0') => {
            a.text.cmp(b.text)
        }
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNumber | Kind::Revision => {
            a.number.cmp(&b.number)
        }
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        // Letters compare by byte and hashes as strings: slice order is exactly that.
        _ => a.text.cmp(b.text),
    }
}

/// The shared walk behind [`compare`] and [`compare_fuzzy`].
fn compare_impl(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let mut ta = Tokens::new(a);
    let mut tb = Tokens::new(b);
    while ta.kind() == tb.kind() && ta.kind() < Kind::End {
        let order = compare_tokens(&ta.current, &tb.current);
        if order != Ordering::Equal {
            return order;
        }
        ta.advance();
        tb.advance();
    }
    let (ka, kb) = (ta.kind(), tb.kind());
    // Both ended, or both hit garbage at the same point.
    if ka == kb {
        return Ordering::Equal;
    }
    // Fuzzy matching only asks whether `b` is a token prefix of `a`.
    if fuzzy && kb == Kind::End {
        return Ordering::Equal;
    }
    // Otherwise the longer version is newer, unless what follows is a pre-release suffix.
    if ka == Kind::Suffix && ta.current.suffix.is_some_and(Suffix::is_pre_release) {
        return Ordering::Less;
    }
    if kb == Kind::Suffix && tb.current.suffix.is_some_and(Suffix::is_pre_release) {
        return Ordering::Greater;
    }
    kb.cmp(&ka)
}

/// Compares two version strings the way apk-tools 3.x does (`apk version -t`).
///
/// Total over all strings, valid or not, exactly like apk; see the module docs.
///
/// ```
/// use std::cmp::Ordering;
/// assert_eq!(apk::version::compare("1.0_rc1", "1.0"), Ordering::Less);
/// assert_eq!(apk::version::compare("1.0-r1", "1.0"), Ordering::Greater);
/// ```
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_impl(a, b, false)
}

/// Compares `version` against `prefix` in apk's fuzzy mode: `Equal` when `prefix` is a
/// token prefix of `version` (`3.6.9` against `3.6`), otherwise as [`compare`].
///
/// This is the comparison behind the `~`, `<~` and `>~` dependency operators. Unlike
/// apk-tools 2.14, a *shorter* version never matches (`3.8` is not `~3.8.1`).
pub fn compare_fuzzy(version: &str, prefix: &str) -> Ordering {
    compare_impl(version, prefix, true)
}

/// Whether `version` satisfies the fuzzy constraint `~prefix` (`3.6.9`, `3.6_pre1` and
/// `3.6` all match `~3.6`).
pub fn fuzzy_match(version: &str, prefix: &str) -> bool {
    compare_fuzzy(version, prefix) == Ordering::Equal
}

/// Whether `version` follows the strict apk-tools 3.x grammar
/// `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]` (§5.1).
///
/// Rejects, among others, the empty string, `.1`, `0.1a1`, `0.1_`, `0.1-r` and unknown
/// suffixes such as `_foo`.
pub fn is_valid(version: &str) -> bool {
    let mut tokens = Tokens::new(version);
    while tokens.kind() < Kind::End {
        tokens.advance();
    }
    tokens.kind() == Kind::End
}

/// A validated apk version, ordered by [`compare`].
///
/// Equality is apk's, not the string's: the first number compares numerically even with
/// leading zeros, so `Version("01.2") == Version("1.2")`. For that reason `Version` does
/// not implement `Hash`.
#[derive(Clone, Debug)]
pub struct Version(String);

impl Version {
    /// The version text exactly as it was parsed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this version satisfies the fuzzy constraint `~prefix`.
    pub fn fuzzy_matches(&self, prefix: &str) -> bool {
        fuzzy_match(&self.0, prefix)
    }
}

/// Why a string is not a [`Version`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// The text does not follow the apk 3.x version grammar.
    #[error(
        "invalid apk version `{version}`: expected digits{{.digits}}[letter]{{_suffix[N]}}[~hash][-rN], for example `1.2.3_rc1-r0`"
    )]
    Invalid {
        /// The offending text.
        version: String,
    },
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_valid(s) {
            Ok(Version(s.to_owned()))
        } else {
            Err(VersionError::Invalid {
                version: s.to_owned(),
            })
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        compare(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const VERSION_DATA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testkit/fixtures/apk-reference/version.data"
    );

    /// Evaluates one `version.data` line the way apk-tools' `version_test.c` does:
    /// `a OP b` checks `OP` (built from `<`, `>`, `=`, `~`), `a !OP b` its negation,
    /// `v` validity and `!v` invalidity.
    fn check_line(line: &str) -> bool {
        let parts: Vec<&str> = line.split(' ').collect();
        if let [a, op, b] = parts[..] {
            let (invert, op) = match op.strip_prefix('!') {
                Some(op) => (true, op),
                None => (false, op),
            };
            let fuzzy = op.contains('~');
            let result = if fuzzy {
                compare_fuzzy(a, b)
            } else {
                compare(a, b)
            };
            let wanted = match result {
                Ordering::Less => op.contains('<'),
                // `~` counts as "equal" in apk's operator masks.
                Ordering::Equal => op.contains('=') || fuzzy,
                Ordering::Greater => op.contains('>'),
            };
            wanted != invert
        } else {
            match line.strip_prefix('!') {
                Some(v) => !is_valid(v),
                None => is_valid(line),
            }
        }
    }

    #[test]
    fn agrees_with_every_line_of_apk_version_data() {
        let data = fs_err::read_to_string(VERSION_DATA).unwrap_or_else(|e| {
            panic!("apk-tools' version table is missing; it belongs in testkit/fixtures: {e}")
        });
        let mut checked = 0;
        let mut failures = Vec::new();
        for (number, raw) in data.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            checked += 1;
            if !check_line(line) {
                failures.push(format!("line {}: {line}", number + 1));
            }
        }
        assert!(
            failures.is_empty(),
            "disagreements:\n{}",
            failures.join("\n")
        );
        assert!(
            checked > 700,
            "only {checked} lines checked; table truncated?"
        );
    }

    #[test]
    fn documented_consequences() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0.1", Less),
            ("1.0_rc1", "1.0", Less),
            ("1.0", "1.0_p1", Less),
            ("1.0", "1.0-r1", Less),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            ("1.0_git2020", "1.0_p1", Less),
            ("8.2.0", "8.2.001", Less),
            ("1.01", "1.1", Less),
            ("01.2", "1.2", Equal),
            ("a", "b", Equal),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn fuzzy_is_a_token_prefix_match() {
        assert!(fuzzy_match("3.6.9", "3.6"));
        assert!(fuzzy_match("3.6_pre1", "3.6"));
        assert!(fuzzy_match("3.6", "3.6"));
        assert!(!fuzzy_match("3.8", "3.8.1"));
        assert!(!fuzzy_match("3.60", "3.6"));
        assert!(Version::from_str("3.6.1-r0").unwrap().fuzzy_matches("3.6"));
    }

    #[test]
    fn strict_grammar() {
        for ok in [
            "0",
            "1.2.3",
            "1.0a",
            "1.0_alpha1_pre2",
            "1.0~c0ffee-r3",
            "1.0-r0",
            "20240101",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            ".1",
            "1.",
            "1..2",
            "0.1a1",
            "1.0bc",
            "0.1_",
            "0.1_foo",
            "0.1-r",
            "1.0-1",
            "1.0-r1-r2",
            "1.0~",
            "1.0~ABC",
            "1.0 ",
            "v1.0",
            "1.0A",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn version_newtype() {
        let v: Version = "1.2.3-r4".parse().unwrap();
        assert_eq!(v.as_str(), "1.2.3-r4");
        assert_eq!(v.to_string(), "1.2.3-r4");
        assert!(v < "1.2.4".parse().unwrap());
        let err = "1.0_foo".parse::<Version>().unwrap_err();
        assert_eq!(
            err,
            VersionError::Invalid {
                version: "1.0_foo".into()
            }
        );
        assert!(err.to_string().contains("`1.0_foo`"));
        let mut sorted: Vec<Version> = ["1.0-r1", "1.0_rc1", "1.0", "0.9.9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        sorted.sort();
        let texts: Vec<&str> = sorted.iter().map(Version::as_str).collect();
        assert_eq!(texts, ["0.9.9", "1.0_rc1", "1.0", "1.0-r1"]);
    }

    /// Valid apk versions, leading zeros and absurd lengths included.
    pub(crate) fn valid_version() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            4 => "[1-9][0-9]{0,3}",
            1 => "0[0-9]{0,2}",
            1 => "[0-9]{20,22}",
        ];
        let suffix = prop_oneof![
            Just("alpha"),
            Just("beta"),
            Just("pre"),
            Just("rc"),
            Just("cvs"),
            Just("svn"),
            Just("git"),
            Just("hg"),
            Just("p"),
        ];
        (
            number.clone(),
            prop::collection::vec(number.clone(), 0..4),
            prop::option::of("[a-z]"),
            prop::collection::vec((suffix, prop::option::of(number)), 0..3),
            prop::option::of("[0-9a-f]{1,8}"),
            prop::option::of(0u32..30),
        )
            .prop_map(|(first, rest, letter, suffixes, hash, rev)| {
                let mut v = first;
                for n in rest {
                    v.push('.');
                    v.push_str(&n);
                }
                v.push_str(letter.as_deref().unwrap_or_default());
                for (s, n) in suffixes {
                    v.push('_');
                    v.push_str(s);
                    v.push_str(n.as_deref().unwrap_or_default());
                }
                if let Some(h) = hash {
                    v.push('~');
                    v.push_str(&h);
                }
                if let Some(r) = rev {
                    v.push_str(&format!("-r{r}"));
                }
                v
            })
    }

    proptest! {
        #[test]
        fn generated_versions_are_valid(v in valid_version()) {
            prop_assert!(is_valid(&v));
            prop_assert!(v.parse::<Version>().is_ok());
        }

        #[test]
        fn reflexive(v in valid_version()) {
            prop_assert_eq!(compare(&v, &v), Ordering::Equal);
            prop_assert!(fuzzy_match(&v, &v));
        }

        #[test]
        fn antisymmetric(a in valid_version(), b in valid_version()) {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn antisymmetric_on_arbitrary_strings(a in "[0-9a-z._~-]{0,12}", b in "[0-9a-z._~-]{0,12}") {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn transitive(a in valid_version(), b in valid_version(), c in valid_version()) {
            let mut v = [a, b, c];
            v.sort_by(|x, y| compare(x, y));
            prop_assert_ne!(compare(&v[0], &v[1]), Ordering::Greater);
            prop_assert_ne!(compare(&v[1], &v[2]), Ordering::Greater);
            prop_assert_ne!(compare(&v[0], &v[2]), Ordering::Greater);
            if compare(&v[0], &v[1]) == Ordering::Less || compare(&v[1], &v[2]) == Ordering::Less {
                prop_assert_eq!(compare(&v[0], &v[2]), Ordering::Less);
            }
        }

        #[test]
        fn a_prefix_fuzzy_matches(v in valid_version(), extra in "(\\.[0-9]{1,3}){0,2}") {
            // Appending later number components keeps the fuzzy match, as `~` promises.
            // Only when nothing but numbers came before, because `.N` may not follow a letter.
            if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                let longer = format!("{v}{extra}");
                prop_assert!(fuzzy_match(&longer, &v));
            }
        }
    }

    /// Sorting a handful of generated versions agrees with pairwise comparison: a denser
    /// transitivity check than random triples, since related versions collide more often.
    #[test]
    fn transitive_on_close_versions() {
        let versions = [
            "1",
            "1.0",
            "1.00",
            "1.01",
            "1.0a",
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_p",
            "1.0_p1",
            "1.0~ab",
            "1.0~ab-r1",
            "1.0-r0",
            "1.0-r1",
            "1.0.0",
            "1.0a_rc",
            "1.0_rc_p",
            "01",
            "1_pre",
            "1_pre-r2",
            "1~0",
            "1a",
            "1.1",
            "1.0_cvs",
            "1.0_hg2",
        ];
        for a in versions {
            for b in versions {
                for c in versions {
                    let (ab, bc, ac) = (compare(a, b), compare(b, c), compare(a, c));
                    if ab != Ordering::Greater && bc != Ordering::Greater {
                        assert_ne!(ac, Ordering::Greater, "{a} <= {b} <= {c} but {a} > {c}");
                    }
                }
            }
        }
    }
}
