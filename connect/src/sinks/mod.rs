//! The sinks that belong to the command itself: `console` and `file`.

pub mod console;
pub mod file;
