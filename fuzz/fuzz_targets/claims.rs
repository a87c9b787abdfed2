//! reposerve's JWT claim rules: any rule (exact, any-of, glob) and any claim value compare
//! without panicking; an exact rule matches its own text only, an any-of rule each member
//! (never a value with a control character).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reposerve::auth::rule_matches;
use reposerve::config::{ClaimRule, Scalar};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rule, value) = text.split_once('\n').unwrap_or((text, ""));
    // A value with a control character never matches (reposerve's rule).
    let clean = !value.chars().any(char::is_control);
    assert_eq!(
        rule_matches(&ClaimRule::Exact(Scalar::Str(rule.into())), value),
        clean && rule == value
    );
    let _ = rule_matches(&ClaimRule::Glob { glob: rule.into() }, value);
    let any = ClaimRule::AnyOf(vec![Scalar::Str(rule.into()), Scalar::Str(value.into())]);
    assert_eq!(rule_matches(&any, value), clean);
});
