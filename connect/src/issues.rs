//! Configuration problems, each naming where it was found: the file, the
//! section (`source`, `sinks.0`, `transforms.1`, `pipeline`), and the
//! connector's own message (connector, property, what was expected).

use std::fmt;

use connector_core::Error;

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where in the pipeline: `source`, `sinks.0`, `transforms.1`, `dead_letter`, `pipeline`, or empty for the file itself.
    pub section: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in one pipeline definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issues {
    /// The file (or `command line`).
    pub origin: String,
    /// The problems, in the order found.
    pub list: Vec<Issue>,
}

impl Issues {
    /// No problems yet, for `origin`.
    pub fn new(origin: impl Into<String>) -> Self {
        Issues {
            origin: origin.into(),
            list: Vec::new(),
        }
    }

    /// Adds a problem.
    pub fn add(&mut self, section: impl Into<String>, message: impl Into<String>) {
        self.list.push(Issue {
            section: section.into(),
            message: message.into(),
        });
    }

    /// Adds a connector's configuration error, one problem per property.
    pub fn add_error(&mut self, section: &str, error: &Error) {
        match error {
            Error::ConfigList { errors, .. } => {
                for e in errors {
                    self.add_error(section, e);
                }
            }
            other => self.add(section, other.to_string()),
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(value)` when nothing was found.
    pub fn into_result<T>(self, value: T) -> Result<T, Issues> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Issues {
    /// One line per problem: `file: section: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if issue.section.is_empty() {
                write!(f, "{}: {}", self.origin, issue.message)?;
            } else {
                write!(f, "{}: {}: {}", self.origin, issue.section, issue.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Issues {}
