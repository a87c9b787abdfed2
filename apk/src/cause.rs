//! One line for an error and its causes, each said once: what the binaries print after
//! `error:`. Library errors follow the rule that a variant holding its cause as a source
//! does not repeat it in its own message; this is the net for those that still do (and for
//! third-party errors), so a user never reads the same cause twice.

use std::error::Error;

/// `outer: cause: root cause`, skipping a cause whose text the message already holds.
pub fn chain<'a>(causes: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut out = String::new();
    for cause in causes {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// [`chain`] of an error and its `source()`s.
pub fn of(err: &(dyn Error + 'static)) -> String {
    chain(std::iter::successors(Some(err), |e| (*e).source()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `x`: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `x`")]
    struct Once {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            of(&Repeats { source: io() }),
            "cannot read `x`: no such file"
        );
        assert_eq!(of(&Once { source: io() }), "cannot read `x`: no such file");
    }
}
