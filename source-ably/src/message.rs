//! Ably messages as records: the `Message` JSON of an SSE `message` event,
//! with `data` decoded by its `encoding`.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use connector_core::{DataType, Field, Record, Schema, Value};
use serde::Deserialize;

/// The columns of every record: `id`, `name`, `data`, `timestamp`, `client_id`.
///
/// `data` is dynamic: a string, bytes, or structured JSON, as the message's
/// `encoding` says.
pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::String),
                Field::new("name", DataType::String),
                Field::new("data", DataType::Json),
                Field::new("timestamp", DataType::Timestamp),
                Field::new("client_id", DataType::String),
            ]))
        })
        .clone()
}

/// An Ably `Message` as the SSE API sends it (fields this source uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: Option<String>,
    name: Option<String>,
    data: Option<serde_json::Value>,
    encoding: Option<String>,
    /// Milliseconds since the epoch.
    timestamp: Option<i64>,
    client_id: Option<String>,
}

/// An Ably `ErrorInfo` (`event: error`, or `{"error": ...}` bodies).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorInfo {
    pub message: Option<String>,
    pub code: Option<i64>,
    pub status_code: Option<u16>,
}

impl ErrorInfo {
    /// `Token expired. (code 40142, status 401)`.
    pub(crate) fn describe(&self) -> String {
        let mut text = self.message.clone().unwrap_or_else(|| "no message".into());
        match (self.code, self.status_code) {
            (Some(code), Some(status)) => {
                text.push_str(&format!(" (code {code}, status {status})"))
            }
            (Some(code), None) => text.push_str(&format!(" (code {code})")),
            (None, Some(status)) => text.push_str(&format!(" (status {status})")),
            (None, None) => {}
        }
        text
    }

    /// Reads an `ErrorInfo`, bare or wrapped as `{"error": ...}`.
    pub(crate) fn parse(text: &str) -> Option<ErrorInfo> {
        #[derive(Deserialize)]
        struct Wrapped {
            error: ErrorInfo,
        }
        if let Ok(w) = serde_json::from_str::<Wrapped>(text) {
            return Some(w.error);
        }
        serde_json::from_str::<ErrorInfo>(text)
            .ok()
            .filter(|e| e.message.is_some() || e.code.is_some())
    }
}

/// The record of one message event's `data` (a `Message` JSON object).
pub fn to_record(payload: &str) -> Result<Record, String> {
    let message: Message =
        serde_json::from_str(payload).map_err(|e| format!("not an Ably message: {e}"))?;
    let data = match message.data {
        None | Some(serde_json::Value::Null) => Value::Null,
        Some(data) => decode_data(data, message.encoding.as_deref().unwrap_or(""))?,
    };
    let timestamp = message.timestamp.map(|ms| ms.saturating_mul(1000));
    let mut record = Record::new(
        schema(),
        vec![
            message.id.map_or(Value::Null, Value::String),
            message.name.map_or(Value::Null, Value::String),
            data,
            timestamp.map_or(Value::Null, Value::Timestamp),
            message.client_id.map_or(Value::Null, Value::String),
        ],
    );
    record.timestamp = timestamp;
    Ok(record)
}

/// A payload while its encodings are undone.
enum Payload {
    Text(String),
    Bytes(Vec<u8>),
    Json(serde_json::Value),
}

/// Undoes `encoding` (`/`-separated steps, applied left to right when the
/// message was encoded, so undone right to left): `base64`, `utf-8`,
/// `json`. Encrypted payloads (`cipher+...`) cannot be read without the
/// channel's key.
///
/// ```
/// use connector_core::Value;
/// use source_ably::decode_data;
///
/// let v = decode_data(serde_json::json!("eyJhIjoxfQ=="), "json/utf-8/base64").unwrap();
/// assert_eq!(v.get_path("a"), Some(&Value::Int64(1)));
/// assert_eq!(decode_data(serde_json::json!("aGk="), "base64").unwrap(), Value::Bytes(b"hi".to_vec()));
/// assert!(decode_data(serde_json::json!("eA=="), "cipher+aes-128-cbc/base64").unwrap_err().contains("encrypted"));
/// ```
pub fn decode_data(data: serde_json::Value, encoding: &str) -> Result<Value, String> {
    let mut payload = match data {
        serde_json::Value::String(s) => Payload::Text(s),
        // Without an encoding step, structured data is taken as it is.
        other => Payload::Json(other),
    };
    for step in encoding.rsplit('/').filter(|s| !s.is_empty()) {
        payload = match (step, payload) {
            ("base64", Payload::Text(s)) => Payload::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| {
                        format!("`data` is not valid base64 (encoding `{encoding}`): {e}")
                    })?,
            ),
            ("utf-8" | "utf8", Payload::Bytes(b)) => {
                Payload::Text(String::from_utf8(b).map_err(|e| {
                    format!("`data` is not valid UTF-8 (encoding `{encoding}`): {e}")
                })?)
            }
            ("utf-8" | "utf8", text @ Payload::Text(_)) => text,
            ("json", Payload::Text(s)) => {
                Payload::Json(serde_json::from_str(&s).map_err(|e| {
                    format!("`data` is not valid JSON (encoding `{encoding}`): {e}")
                })?)
            }
            ("json", Payload::Bytes(b)) => {
                Payload::Json(serde_json::from_slice(&b).map_err(|e| {
                    format!("`data` is not valid JSON (encoding `{encoding}`): {e}")
                })?)
            }
            (step, _) if step.starts_with("cipher") => {
                return Err(format!(
                    "`data` is encrypted (`{step}` in encoding `{encoding}`); this source has no cipher key"
                ));
            }
            (step, _) => {
                return Err(format!(
                    "cannot undo `{step}` of encoding `{encoding}` (supported: json, base64, utf-8)"
                ));
            }
        };
    }
    Ok(match payload {
        Payload::Text(s) => Value::String(s),
        Payload::Bytes(b) => Value::Bytes(b),
        Payload::Json(j) => Value::from_json(j),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_to_record() {
        let r = to_record(
            r#"{"id":"YqigX7VFsR:0:0","name":"foo","timestamp":1556806691341,"encoding":"json","channel":"channel","data":"{\"foo\":1}","clientId":"bob"}"#,
        )
        .unwrap();
        assert_eq!(r.get("id"), Some(&Value::from("YqigX7VFsR:0:0")));
        assert_eq!(r.get("name"), Some(&Value::from("foo")));
        assert_eq!(r.get_path("data.foo"), Some(&Value::Int64(1)));
        assert_eq!(
            r.get("timestamp"),
            Some(&Value::Timestamp(1_556_806_691_341_000))
        );
        assert_eq!(r.timestamp, Some(1_556_806_691_341_000));
        assert_eq!(r.get("client_id"), Some(&Value::from("bob")));
        let bare = to_record(r#"{"id":"x:0:0","data":"plain text"}"#).unwrap();
        assert_eq!(bare.get("data"), Some(&Value::from("plain text")));
        assert_eq!(bare.get("name"), Some(&Value::Null));
        assert_eq!(bare.get("client_id"), Some(&Value::Null));
    }

    #[test]
    fn encodings() {
        assert_eq!(
            decode_data(json!("aGVsbG8="), "utf-8/base64").unwrap(),
            Value::from("hello")
        );
        assert_eq!(
            decode_data(json!("[1,2]"), "json").unwrap(),
            Value::from_json(json!([1, 2]))
        );
        assert_eq!(
            decode_data(json!("WzEsMl0="), "json/base64").unwrap(),
            Value::from_json(json!([1, 2]))
        );
        assert_eq!(
            decode_data(json!({"a": 1}), "").unwrap(),
            Value::from_json(json!({"a": 1}))
        );
        assert_eq!(decode_data(json!("x"), "utf-8").unwrap(), Value::from("x"));
        let bad = decode_data(json!("//8="), "utf-8/base64").unwrap_err();
        assert!(
            bad.starts_with("`data` is not valid UTF-8 (encoding `utf-8/base64`)"),
            "{bad}"
        );
        let bad = decode_data(json!("{"), "json").unwrap_err();
        assert!(
            bad.starts_with("`data` is not valid JSON (encoding `json`)"),
            "{bad}"
        );
        let bad = decode_data(json!("x"), "gzip").unwrap_err();
        assert_eq!(
            bad,
            "cannot undo `gzip` of encoding `gzip` (supported: json, base64, utf-8)"
        );
        assert!(
            to_record("[1]")
                .unwrap_err()
                .starts_with("not an Ably message")
        );
    }

    #[test]
    fn error_info() {
        let e = ErrorInfo::parse(
            r#"{"error":{"message":"Invalid key","code":40101,"statusCode":401}}"#,
        )
        .unwrap();
        assert_eq!(e.describe(), "Invalid key (code 40101, status 401)");
        assert!(ErrorInfo::parse("<html>").is_none());
    }
}
