//! A reader that goes away (`strata snapshots | head`) ends the command quietly, as it does
//! for other Unix tools, instead of a panic with a backtrace.
//!
//! Rust ignores `SIGPIPE`, so a write to a closed pipe fails with `EPIPE`: `println!` panics
//! with "failed printing to stdout: Broken pipe", and an explicit write returns the error.
//! Both end here in exit status 0 without a message: the output was simply not wanted.

/// Install a panic hook that turns the print macros' `EPIPE` panic into a quiet exit. Every
/// other panic goes to the previous hook unchanged.
pub fn exit_quietly_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_print_epipe(payload) {
            std::process::exit(0);
        }
        previous(info);
    }));
}

/// The panic message of `print!`/`println!` on a closed pipe.
fn is_print_epipe(msg: &str) -> bool {
    msg.starts_with("failed printing to stdout")
        && (msg.contains("Broken pipe") || msg.contains("os error 32"))
}

/// Whether a command failed only because its output pipe was closed.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_print_macros_epipe_panic_only() {
        assert!(is_print_epipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_print_epipe(
            "failed printing to stdout: No space left on device"
        ));
        assert!(!is_print_epipe("index out of bounds"));
        let e = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the listing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no repository")));
    }
}
