//! Timestamp formats for the `timestamp_format` property and `datetime`
//! fields.
//!
//! - `rfc3339` (the default for text): `2024-01-02T03:04:05.123Z`, any
//!   offset; also accepted without an offset (`2024-01-02 03:04:05`, read as
//!   UTC) and as a bare date.
//! - `unix`, `unix_ms`, `unix_us`: seconds, milliseconds or microseconds
//!   since the epoch, as numbers or digit strings. Numbers are milliseconds
//!   under every format except `unix` and `unix_us`.
//! - Java-style patterns (`yyyy-MM-dd HH:mm:ss.SSS`, `dd/MM/yyyy`,
//!   `yyyy-MM-dd'T'HH:mm:ssXXX`): letters `y`/`u`/`Y` year, `M`/`L` month
//!   (`MMM` short name, `MMMM` full name), `d` day, `D` day of year, `H`
//!   hour 0-23, `h` hour 1-12 with `a` AM/PM, `m` minute, `s` second, `S`
//!   fraction (`.SSS` accepts any number of digits), `E` day name, `Z`/`X`/`x`
//!   offset (`X` also accepts `Z`); text in single quotes is literal. A
//!   pattern without an offset is read as UTC.
//!
//! ```
//! use connector_core::format::timestamp::TimestampFormat;
//!
//! let f: TimestampFormat = "yyyy-MM-dd HH:mm:ss.SSS".parse().unwrap();
//! assert_eq!(f.parse_str("1970-01-01 00:00:01.500"), Ok(1_500_000));
//! assert_eq!(TimestampFormat::Rfc3339.parse_str("1970-01-01T00:00:02Z"), Ok(2_000_000));
//! assert_eq!(TimestampFormat::Rfc3339.from_i64(3), Some(3_000)); // Unix ms
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// How a timestamp is written in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// RFC 3339 text (lenient: offset optional, `T` or space); numbers are Unix ms.
    #[default]
    Rfc3339,
    /// Seconds since the epoch.
    UnixSeconds,
    /// Milliseconds since the epoch.
    UnixMillis,
    /// Microseconds since the epoch.
    UnixMicros,
    /// A Java-style pattern; numbers are Unix ms.
    Pattern(Pattern),
}

/// A Java-style date pattern translated for `chrono`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    chrono: String,
    has_time: bool,
    has_offset: bool,
    /// The offset letter accepts a literal `Z` for UTC.
    zulu: bool,
}

impl FromStr for TimestampFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "" | "rfc3339" | "RFC3339" | "iso8601" | "ISO8601" => TimestampFormat::Rfc3339,
            "unix" | "unix_s" | "epoch" | "epoch_seconds" => TimestampFormat::UnixSeconds,
            "unix_ms" | "epoch_millis" | "epoch_ms" => TimestampFormat::UnixMillis,
            "unix_us" | "epoch_micros" | "epoch_us" => TimestampFormat::UnixMicros,
            pattern => TimestampFormat::Pattern(Pattern::parse(pattern)?),
        })
    }
}

impl fmt::Display for TimestampFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimestampFormat::Rfc3339 => "rfc3339",
            TimestampFormat::UnixSeconds => "unix",
            TimestampFormat::UnixMillis => "unix_ms",
            TimestampFormat::UnixMicros => "unix_us",
            TimestampFormat::Pattern(p) => &p.source,
        })
    }
}

impl TimestampFormat {
    /// Microseconds since the epoch from a whole number in the payload.
    pub fn from_i64(&self, n: i64) -> Option<i64> {
        match self {
            TimestampFormat::UnixSeconds => n.checked_mul(1_000_000),
            TimestampFormat::UnixMicros => Some(n),
            _ => n.checked_mul(1000),
        }
    }

    /// Microseconds since the epoch from a number with a fraction.
    pub fn from_f64(&self, n: f64) -> Option<i64> {
        let micros = match self {
            TimestampFormat::UnixSeconds => n * 1e6,
            TimestampFormat::UnixMicros => n,
            _ => n * 1e3,
        };
        (micros.is_finite() && micros.abs() < 9.2e18).then(|| micros.round() as i64)
    }

    /// Microseconds since the epoch from text; the error says what was expected.
    pub fn parse_str(&self, text: &str) -> Result<i64, String> {
        let s = text.trim();
        match self {
            TimestampFormat::Rfc3339 => parse_rfc3339(s).ok_or_else(|| {
                format!("`{text}` is not an RFC 3339 timestamp (e.g. `2024-01-02T03:04:05Z`)")
            }),
            TimestampFormat::UnixSeconds
            | TimestampFormat::UnixMillis
            | TimestampFormat::UnixMicros => {
                let parsed = match s.parse::<i64>() {
                    Ok(n) => self.from_i64(n),
                    Err(_) => s.parse::<f64>().ok().and_then(|n| self.from_f64(n)),
                };
                parsed.ok_or_else(|| format!("`{text}` is not a {self} timestamp (a number)"))
            }
            TimestampFormat::Pattern(p) => p
                .parse_text(s)
                .ok_or_else(|| format!("`{text}` does not match timestamp format `{}`", p.source)),
        }
    }
}

/// RFC 3339, then the same without an offset (UTC), then a bare date.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.timestamp_micros());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

impl Pattern {
    /// Translates a Java-style pattern; the error names the unsupported letter.
    pub fn parse(source: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = source.chars().collect();
        let mut out = String::new();
        let (mut has_date, mut has_time, mut has_offset, mut zulu) = (false, false, false, false);
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // Quoted literal; '' is a quote.
                if chars.get(i + 1) == Some(&'\'') {
                    out.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(format!(
                                "timestamp format `{source}`: quote at {i} is never closed"
                            ));
                        }
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            out.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some('%') => {
                            out.push_str("%%");
                            j += 1;
                        }
                        Some(&other) => {
                            out.push(other);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                if c == '%' {
                    out.push_str("%%");
                } else if c == '.' && chars.get(i + 1) == Some(&'S') {
                    // `.SSS`: any number of fraction digits, dot included.
                    out.push_str("%.f");
                    has_time = true;
                    i += 1;
                    while chars.get(i) == Some(&'S') {
                        i += 1;
                    }
                    continue;
                } else {
                    out.push(c);
                }
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let spec = match (c, n) {
                ('y' | 'u' | 'Y', 2) => "%y",
                ('y' | 'u' | 'Y', _) => "%Y",
                ('M' | 'L', 1 | 2) => "%m",
                ('M' | 'L', 3) => "%b",
                ('M' | 'L', _) => "%B",
                ('d', 1 | 2) => "%d",
                ('D', 1..=3) => "%j",
                ('H', 1 | 2) => "%H",
                ('h', 1 | 2) => "%I",
                ('m', 1 | 2) => "%M",
                ('s', 1 | 2) => "%S",
                ('S', 3) => "%3f",
                ('S', 6) => "%6f",
                ('S', 9) => "%9f",
                ('a', 1) => "%p",
                ('E', 1..=3) => "%a",
                ('E', _) => "%A",
                ('Z', 1..=3) | ('x', 1 | 2) => "%z",
                ('Z', 5) | ('x', 3) => "%:z",
                ('X', 1 | 2) => {
                    zulu = true;
                    "%z"
                }
                ('X', 3) => {
                    zulu = true;
                    "%:z"
                }
                _ => {
                    return Err(format!(
                        "timestamp format `{source}`: `{}` is not supported (supported letters: y M d D H h m s S a E Z X x, text in single quotes)",
                        c.to_string().repeat(n)
                    ));
                }
            };
            match c {
                'y' | 'u' | 'Y' | 'M' | 'L' | 'd' | 'D' => has_date = true,
                'Z' | 'X' | 'x' => has_offset = true,
                'E' | 'a' => {}
                _ => has_time = true,
            }
            out.push_str(spec);
            i += n;
        }
        if !has_date {
            return Err(format!(
                "timestamp format `{source}` has no date part (use e.g. `yyyy-MM-dd HH:mm:ss`)"
            ));
        }
        Ok(Pattern {
            source: source.to_owned(),
            chrono: out,
            has_time,
            has_offset,
            zulu,
        })
    }

    /// The pattern as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn parse_text(&self, s: &str) -> Option<i64> {
        if self.has_offset {
            let owned;
            let s = match s.strip_suffix('Z') {
                Some(head) if self.zulu => {
                    owned = format!("{head}+00:00");
                    owned.as_str()
                }
                _ => s,
            };
            // `%z` accepts `+0000`; `%:z` needs a colon; accept either.
            let alt = self.chrono.replace("%:z", "%z");
            let alt_colon = self.chrono.replace("%z", "%:z");
            return [&self.chrono, &alt, &alt_colon]
                .iter()
                .find_map(|f| DateTime::parse_from_str(s, f).ok())
                .map(|t| t.timestamp_micros());
        }
        if self.has_time {
            return NaiveDateTime::parse_from_str(s, &self.chrono)
                .ok()
                .map(|t| t.and_utc().timestamp_micros());
        }
        NaiveDate::parse_from_str(s, &self.chrono)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_micros())
    }
}

/// The field that holds a record's event time, and its format.
///
/// ```
/// use connector_core::format::timestamp::TimestampField;
/// use connector_core::{Record, Value};
///
/// let field = TimestampField::new("at", "yyyy-MM-dd HH:mm:ss").unwrap();
/// let record = Record::from_pairs([("at", Value::from("1970-01-01 00:00:03"))]);
/// assert_eq!(field.micros(&record), Ok(Some(3_000_000)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampField {
    /// Field name, or a dotted path into nested values (`meta.at`).
    pub field: String,
    /// How the field's text or number is read.
    pub format: TimestampFormat,
}

impl TimestampField {
    /// A timestamp field with a format (see [`TimestampFormat`]'s `FromStr`).
    pub fn new(field: impl Into<String>, format: &str) -> Result<Self, String> {
        Ok(TimestampField {
            field: field.into(),
            format: format.parse()?,
        })
    }

    /// The event time of `record` in microseconds since the epoch: `None`
    /// when the field is missing or null, an error when it cannot be read.
    pub fn micros(&self, record: &crate::Record) -> Result<Option<i64>, String> {
        use crate::Value;
        let name = &self.field;
        let Some(value) = record.get_path(name) else {
            return Ok(None);
        };
        let out_of_range = || format!("timestamp field `{name}`: {value} is out of range");
        match value {
            Value::Null => Ok(None),
            Value::Timestamp(t) => Ok(Some(*t)),
            Value::Date(d) => Ok(Some(i64::from(*d) * 86_400_000_000)),
            Value::Int64(n) => self.format.from_i64(*n).map(Some).ok_or_else(out_of_range),
            Value::Float64(n) => self.format.from_f64(*n).map(Some).ok_or_else(out_of_range),
            Value::String(s) => self
                .format
                .parse_str(s)
                .map(Some)
                .map_err(|e| format!("timestamp field `{name}`: {e}")),
            other => Err(format!(
                "timestamp field `{name}` holds {}, not a time",
                crate::DataType::of(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn java_patterns() {
        let cases = [
            (
                "yyyy-MM-dd HH:mm:ss.SSS",
                "2024-03-05 07:08:09.123",
                "2024-03-05T07:08:09.123Z",
            ),
            (
                "yyyy-MM-dd HH:mm:ss",
                "2024-03-05 07:08:09",
                "2024-03-05T07:08:09Z",
            ),
            ("dd/MM/yyyy", "05/03/2024", "2024-03-05T00:00:00Z"),
            (
                "yyyy-MM-dd'T'HH:mm:ssXXX",
                "2024-03-05T07:08:09+02:00",
                "2024-03-05T05:08:09Z",
            ),
            (
                "yyyy-MM-dd'T'HH:mm:ssXXX",
                "2024-03-05T07:08:09Z",
                "2024-03-05T07:08:09Z",
            ),
            (
                "yyyy-MM-dd HH:mm:ss Z",
                "2024-03-05 07:08:09 +0100",
                "2024-03-05T06:08:09Z",
            ),
            (
                "dd MMM yyyy hh:mm a",
                "05 Mar 2024 07:08 PM",
                "2024-03-05T19:08:00Z",
            ),
            (
                "yyyyMMddHHmmssSSS",
                "20240305070809123",
                "2024-03-05T07:08:09.123Z",
            ),
            (
                "yyyy-MM-dd HH:mm:ss.SSSSSS",
                "2024-03-05 07:08:09.123456",
                "2024-03-05T07:08:09.123456Z",
            ),
        ];
        for (pattern, input, expected) in cases {
            let f: TimestampFormat = pattern.parse().unwrap();
            assert_eq!(
                f.parse_str(input),
                Ok(micros(expected)),
                "{pattern} {input}"
            );
        }
    }

    #[test]
    fn bad_patterns_and_inputs() {
        assert!(
            "HH:mm"
                .parse::<TimestampFormat>()
                .unwrap_err()
                .contains("no date part")
        );
        assert!(
            "yyyy-QQ"
                .parse::<TimestampFormat>()
                .unwrap_err()
                .contains("`QQ` is not supported")
        );
        assert!(
            "yyyy 'x"
                .parse::<TimestampFormat>()
                .unwrap_err()
                .contains("never closed")
        );
        let f: TimestampFormat = "yyyy-MM-dd".parse().unwrap();
        let err = f.parse_str("05/03/2024").unwrap_err();
        assert!(
            err.contains("does not match timestamp format `yyyy-MM-dd`"),
            "{err}"
        );
    }

    #[test]
    fn rfc3339_is_lenient() {
        let f = TimestampFormat::Rfc3339;
        assert_eq!(
            f.parse_str("2024-03-05T07:08:09.5+01:00"),
            Ok(micros("2024-03-05T06:08:09.5Z"))
        );
        assert_eq!(
            f.parse_str("2024-03-05 07:08:09"),
            Ok(micros("2024-03-05T07:08:09Z"))
        );
        assert_eq!(
            f.parse_str("2024-03-05"),
            Ok(micros("2024-03-05T00:00:00Z"))
        );
        assert!(f.parse_str("yesterday").is_err());
    }

    #[test]
    fn unix_numbers() {
        assert_eq!(TimestampFormat::Rfc3339.from_i64(1500), Some(1_500_000));
        assert_eq!(TimestampFormat::UnixSeconds.from_i64(2), Some(2_000_000));
        assert_eq!(TimestampFormat::UnixMicros.parse_str("17"), Ok(17));
        assert_eq!(TimestampFormat::UnixMillis.parse_str("1.5"), Ok(1500));
        assert_eq!(TimestampFormat::UnixMillis.from_i64(i64::MAX), None);
        assert!(TimestampFormat::UnixSeconds.parse_str("x").is_err());
    }
}
