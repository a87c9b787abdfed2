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

/// Whether any of `causes` is a write to a closed pipe (`cmd | head`): the reader left, which
/// is no error worth reporting.
pub fn is_broken_pipe<'a>(causes: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> bool {
    causes.into_iter().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
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

    #[test]
    fn a_closed_pipe_is_found_below_a_context() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let wrapped = Once { source: pipe };
        assert!(is_broken_pipe(std::iter::successors(
            Some(&wrapped as &(dyn Error + 'static)),
            |e| (*e).source()
        )));
        let other = Once {
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(!is_broken_pipe(std::iter::successors(
            Some(&other as &(dyn Error + 'static)),
            |e| (*e).source()
        )));
    }
}
