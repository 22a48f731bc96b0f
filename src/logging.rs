//! Log output for every command: `tracing` to stderr, filtered by RUST_LOG.

use std::io::IsTerminal;

/// Colour only for a person at a terminal: a file, a pipe or journald gets
/// plain text, and NO_COLOR (https://no-color.org) turns it off everywhere.
pub fn stderr_wants_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Install the subscriber; `default_filter` applies when RUST_LOG is unset.
/// A second call (tests) keeps the first.
pub fn init(default_filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(stderr_wants_colour())
        .try_init();
}
