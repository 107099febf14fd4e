//! The `syncdesk` command line.
fn main() {}
