//! Standard output for the commands and the devnet's progress lines. A reader that goes away
//! (`op-lite devnet | head -2`) is an answer to act on, not a panic: `println!` aborts the
//! process on a closed pipe (Rust ignores SIGPIPE), these return false.

use std::io::Write;

/// Writes `text` to standard output and flushes it; false when standard output is closed.
pub fn print(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_ok()
}

/// Writes `line` and a newline to standard output; false when standard output is closed.
pub fn println(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}
