//! The `file` sink: one line per record (JSON lines by default), appended
//! to a file and synced to disk before the batch is acknowledged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use connector_core::check::{CheckReport, FailureKind};
use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{Encoder, FormatConfig, Progress, props};
use connector_core::{Batch, Error, Properties, Result, Sink};

const COMPONENT: &str = "file sink";

/// The properties of the `file` sink.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "file",
    role: Role::Sink,
    description: "Appends one line per record to a file (JSON lines by default), synced to disk before each batch is acknowledged.",
    properties: &[
        PropertySpec::required(
            "path",
            PropertyKind::String,
            "File to write; created when missing.",
        ),
        props::data_type(&["json", "text", "delimited"], Some("json")),
        PropertySpec::optional(
            "append",
            PropertyKind::Boolean,
            Some("true"),
            "`true` appends to an existing file; `false` empties it when the sink opens it.",
        ),
        PropertySpec::optional(
            "fsync",
            PropertyKind::Boolean,
            Some("true"),
            "`true` syncs each batch to disk before acknowledging it (at-least-once across a machine crash); `false` leaves that to the OS.",
        ),
        props::FIELDS,
        props::DELIMITER,
        props::TEXT_TEMPLATE,
    ],
};

/// The file sink's settings.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// File to write.
    pub path: PathBuf,
    /// How each record becomes a line.
    pub format: FormatConfig,
    /// Keep what the file holds.
    pub append: bool,
    /// Sync each batch before acknowledging it.
    pub fsync: bool,
}

impl FileConfig {
    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let path: String = r.required("path");
        if r.is_set("path") && path.trim().is_empty() {
            r.invalid("path", "must not be empty");
        }
        let format = FormatConfig::read(&mut r);
        let append: bool = r.required("append");
        let fsync: bool = r.required("fsync");
        r.finish()?;
        Ok(FileConfig {
            path: path.into(),
            format,
            append,
            fsync,
        })
    }

    /// The line encoder.
    pub fn encoder(&self) -> Result<Box<dyn Encoder>> {
        self.format.encoder()
    }
}

/// Writes one line per record to a file.
pub struct FileSink {
    config: FileConfig,
    encoder: Box<dyn Encoder>,
    file: Option<std::fs::File>,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.config.path)
            .finish()
    }
}

impl FileSink {
    /// A sink from its settings; the file is opened by the first batch.
    pub fn new(config: FileConfig) -> Result<Self> {
        let encoder = config.encoder()?;
        Ok(FileSink {
            config,
            encoder,
            file: None,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    /// A sink from the `file` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        FileSink::new(FileConfig::from_properties(props)?)
    }

    fn open(&self) -> Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if self.config.append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        options.open(&self.config.path).map_err(|e| {
            Error::permanent(
                COMPONENT,
                format!("open {}", self.config.path.display()),
                e.to_string(),
            )
        })
    }

    /// Encodes every record of the batch into the buffer, one per line.
    async fn encode(&mut self, batch: &Batch) -> Result<()> {
        self.buffer.clear();
        for (i, record) in batch.records.iter().enumerate() {
            let mut resolves = 0;
            loop {
                let start = self.buffer.len();
                match self.encoder.encode(record, &mut self.buffer) {
                    Ok(Progress::Done) => break,
                    Ok(Progress::NeedsResolve) if resolves < 4 => {
                        self.buffer.truncate(start);
                        resolves += 1;
                        self.encoder.resolve().await?;
                    }
                    Ok(Progress::NeedsResolve) => {
                        return Err(Error::encode(
                            self.encoder.format(),
                            i,
                            "encoder kept asking to resolve the same record",
                        )
                        .in_component(COMPONENT));
                    }
                    Err(e) => {
                        let at = record
                            .position
                            .as_ref()
                            .map_or_else(|| format!("#{i} of its batch"), ToString::to_string);
                        return Err(e.at(at).in_component(COMPONENT));
                    }
                }
            }
            self.buffer.push(b'\n');
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        COMPONENT
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        if let Err(e) = self.encode(&batch).await {
            // Nothing of the batch was written: the bad-data policy decides.
            batch.rejected(e);
            return Ok(());
        }
        let mut file = match self.file.take() {
            Some(file) => file,
            None => match self.open() {
                Ok(file) => file,
                Err(e) => {
                    batch.failed(e.duplicate());
                    return Err(e);
                }
            },
        };
        let buffer = std::mem::take(&mut self.buffer);
        let fsync = self.config.fsync;
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let result = file
                .write_all(&buffer)
                .and_then(|()| if fsync { file.sync_data() } else { Ok(()) });
            (file, buffer, result)
        })
        .await;
        let (file, buffer, result) = match written {
            Ok(parts) => parts,
            Err(e) => {
                let err = Error::permanent(COMPONENT, "write", e.to_string());
                batch.failed(err.duplicate());
                return Err(err);
            }
        };
        self.buffer = buffer;
        self.file = Some(file);
        match result {
            Ok(()) => {
                batch.delivered();
                Ok(())
            }
            Err(e) => {
                let err = Error::permanent(
                    COMPONENT,
                    format!("write {}", self.config.path.display()),
                    e.to_string(),
                );
                batch.failed(err.duplicate());
                Err(err)
            }
        }
    }

    /// Checks that the file can be written, without creating or changing it.
    async fn check(&mut self, _timeout: Duration) -> CheckReport {
        let mut report = CheckReport::new(COMPONENT);
        let path = &self.config.path;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let step = format!("directory {}", dir.display());
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() && !m.permissions().readonly() => {
                report.pass(step, "exists");
            }
            Ok(m) if m.is_dir() => {
                report.fail(step, FailureKind::PermissionDenied, "is read-only");
                return report;
            }
            Ok(_) => {
                report.fail(step, FailureKind::Invalid, "is not a directory");
                return report;
            }
            Err(e) => {
                report.fail(step, FailureKind::NotFound, e.to_string());
                return report;
            }
        }
        let step = format!("file {}", path.display());
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                report.fail(step, FailureKind::Invalid, "is a directory");
            }
            Ok(_) => match open_existing(path) {
                Ok(()) => {
                    report.pass(step, "writable");
                }
                Err(e) => {
                    report.fail(step, FailureKind::PermissionDenied, e.to_string());
                }
            },
            Err(_) => {
                report.pass(step, "will be created");
            }
        }
        report
    }
}

/// Opens an existing file for appending (which changes nothing in it).
fn open_existing(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::{Ack, Record, Value};

    fn sink(dir: &Path, extra: &[(&str, &str)]) -> FileSink {
        let path = dir.join("out.jsonl");
        let mut props = Properties::from_pairs([("path", path.to_str().unwrap())]);
        for (k, v) in extra {
            props.set(*k, *v);
        }
        FileSink::from_properties(&props).unwrap()
    }

    #[tokio::test]
    async fn writes_json_lines_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..2 {
            let mut s = sink(dir.path(), &[]);
            let (ack, outcome) = Ack::channel();
            let batch = Batch::with_ack(
                vec![Record::from_pairs([
                    ("n", Value::Int64(n)),
                    ("s", Value::from("a\"b")),
                ])],
                ack,
            );
            s.send(batch).await.unwrap();
            assert!(outcome.await.is_delivered());
            s.close().await.unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"n\":0,\"s\":\"a\\\"b\"}\n{\"n\":1,\"s\":\"a\\\"b\"}\n"
        );
    }

    #[tokio::test]
    async fn truncates_without_append_and_renders_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("out.jsonl"), "old\n").unwrap();
        let mut s = sink(
            dir.path(),
            &[
                ("append", "false"),
                ("data_type", "text"),
                ("text_template", "{{ .device }}={{ .n }}"),
            ],
        );
        s.send(Batch::new(vec![Record::from_pairs([
            ("device", Value::from("d1")),
            ("n", Value::Int64(7)),
        ])]))
        .await
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        assert_eq!(text, "d1=7\n");
    }

    #[tokio::test]
    async fn unwritable_path_fails_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let props = Properties::from_pairs([(
            "path",
            dir.path().join("missing/out.jsonl").to_str().unwrap(),
        )]);
        let mut s = FileSink::from_properties(&props).unwrap();
        let report = s.check(Duration::from_secs(1)).await;
        assert!(!report.is_ok());
        assert!(
            report.to_string().contains("file sink: FAILED directory"),
            "{report}"
        );
        let (ack, outcome) = Ack::channel();
        let batch = Batch::with_ack(vec![Record::from_pairs([("n", Value::Int64(1))])], ack);
        let err = s.send(batch).await.unwrap_err().to_string();
        assert!(err.starts_with("file sink: open "), "{err}");
        assert!(!outcome.await.is_delivered());
    }

    #[test]
    fn unknown_format_is_named() {
        let err = FileConfig::from_properties(&Properties::from_pairs([
            ("path", "x"),
            ("data_type", "avro"),
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "file sink: property `data_type`: expected one of `json`, `text`, `delimited`, got `avro`"
        );
    }
}
