//! An error with its causes on one line (`what: why: root cause`), for messages that
//! keep an error as text (events, run summaries) and for the binary's last word.
use std::error::Error;
use std::fmt::Write;

/// `e`, then each `source()` in turn, joined by `: `.
pub fn error_chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Some errors repeat their cause in their own message: say it once.
        if !out.ends_with(&text) {
            let _ = write!(out, ": {text}");
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("store /x")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_message() {
        let e = Outer(std::io::Error::other("No space left on device"));
        assert_eq!(error_chain(&e), "store /x: No space left on device");
    }
}
