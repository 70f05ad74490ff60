//! How a failed command's error is printed: one line, each cause once.
//!
//! Many error types both print their cause (`"...: {source}"`) and expose it as `source()`, so
//! walking the chain naively printed `... (os error 20): Not a directory (os error 20)`. A cause
//! whose text is already in the line is skipped, and line breaks inside a message (some library
//! errors draw snippets) are folded, so the operator gets one line.

/// The error and its causes as one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || out.contains(text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints its source and also returns it from `source()`, as thiserror's `{source}` does.
    #[derive(Debug)]
    struct Io {
        source: std::io::Error,
    }

    impl std::fmt::Display for Io {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "I/O error on /x: {}", self.source)
        }
    }

    impl std::error::Error for Io {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::other("Not a directory (os error 20)");
        let e = anyhow::Error::new(Io { source: io }).context("cannot open data directory");
        assert_eq!(
            one_line(&e),
            "cannot open data directory: I/O error on /x: Not a directory (os error 20)"
        );
    }

    #[test]
    fn causes_not_in_the_message_are_kept_and_lines_folded() {
        let e = anyhow::anyhow!("line one\n  line two").context("outer");
        assert_eq!(one_line(&e), "outer: line one line two");
    }
}
