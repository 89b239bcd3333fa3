//! What the connected server is and supports.
//!
//! ClickHouse 18.16 (Debian's) and current releases differ in types
//! (`DateTime64`, `Date32`, `Bool`), in settings (`insert_deduplication_token`)
//! and in defaults (`log_queries`). The sink asks the server once — its
//! version, and which of the settings it uses exist — and uses only what is
//! there, because an unknown setting in the URL is a hard error.

use std::fmt;

/// A ClickHouse release number, e.g. `18.16.1` or `24.3.2.23`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Version {
    /// Year-based major number (18, 21, 24, ...).
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number.
    pub patch: u32,
}

impl Version {
    /// Parses `18.16.1` (extra parts are ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(Version {
            major: parts.next()??,
            minor: parts.next().flatten().unwrap_or(0),
            patch: parts.next().flatten().unwrap_or(0),
        })
    }

    /// Whether this version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The connected server's version and the features the sink uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// What `SELECT version()` said.
    pub version: Version,
    /// The server knows `insert_deduplication_token` (22.x and later).
    pub dedup_token: bool,
    /// Queries are logged to `system.query_log` without asking (the
    /// `log_queries` default became 1 in 20.x).
    pub logs_queries: bool,
    /// The server has asynchronous inserts (`wait_for_async_insert`, 21.11+):
    /// the sink then asks to wait for them, so that an answer means the
    /// rows are written even where a profile turns `async_insert` on.
    pub async_inserts: bool,
}

impl ServerInfo {
    /// `DateTime64` columns exist (20.1+).
    pub fn supports_datetime64(&self) -> bool {
        self.version.at_least(20, 1)
    }

    /// `Date32` columns exist (21.9+).
    pub fn supports_date32(&self) -> bool {
        self.version.at_least(21, 9)
    }

    /// The `Bool` type exists (21.12+).
    pub fn supports_bool(&self) -> bool {
        self.version.at_least(21, 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let old = Version::parse("18.16.1").unwrap();
        let new = Version::parse("24.3.2.23").unwrap();
        assert!(old < new);
        assert!(new.at_least(21, 12));
        assert!(!old.at_least(20, 1));
        assert_eq!(old.to_string(), "18.16.1");
        assert_eq!(Version::parse("x"), None);
    }
}
