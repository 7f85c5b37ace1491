//! What the CLI prints for a person or a script: one line at a time on standard output (logs go
//! to standard error).

#[expect(clippy::print_stdout, reason = "the CLI's output")]
pub fn say(msg: &str) {
    println!("{msg}");
}
