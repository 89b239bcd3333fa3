//! A sink that prints records, one line each.

use std::io::Write;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::format::template::Template;
use crate::record::Batch;
use crate::sink::Sink;

/// Prints each record as a JSON line, or rendered by a template, to
/// standard output (or any writer). A batch is acknowledged once its lines
/// are written and flushed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use connector_core::{Batch, Record, Sink, Value, console::ConsoleSink, format::template::Template};
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Clone, Default)]
/// struct Buffer(Arc<Mutex<Vec<u8>>>);
/// impl std::io::Write for Buffer {
///     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
///     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// }
///
/// let out = Buffer::default();
/// let mut sink = ConsoleSink::to_writer(out.clone())
///     .with_template(Template::parse("{{ .device }}={{ .number }}").unwrap());
/// sink.send(Batch::new(vec![Record::from_pairs([("device", Value::from("d1")), ("number", 7.into())])])).await.unwrap();
/// assert_eq!(String::from_utf8(out.0.lock().unwrap().clone()).unwrap(), "d1=7\n");
/// # }
/// ```
pub struct ConsoleSink {
    out: Box<dyn Write + Send>,
    template: Option<Template>,
    buffer: Vec<u8>,
    show_kind: bool,
}

impl ConsoleSink {
    /// Prints JSON lines to standard output.
    pub fn stdout() -> Self {
        ConsoleSink::to_writer(std::io::stdout())
    }

    /// Prints JSON lines to `out`.
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        ConsoleSink {
            out: Box::new(out),
            template: None,
            buffer: Vec::with_capacity(8192),
            show_kind: false,
        }
    }

    /// Renders each record with `template` instead of JSON.
    pub fn with_template(mut self, template: Template) -> Self {
        self.template = Some(template);
        self
    }

    /// Prefixes each line with the record's change kind (`insert: {...}`),
    /// useful for change streams.
    pub fn with_change_kind(mut self, show: bool) -> Self {
        self.show_kind = show;
        self
    }
}

impl std::fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSink")
            .field("template", &self.template.as_ref().map(Template::source))
            .finish()
    }
}

#[async_trait]
impl Sink for ConsoleSink {
    fn name(&self) -> &str {
        "console sink"
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        self.buffer.clear();
        let mut line = String::new();
        for record in &batch.records {
            if self.show_kind {
                self.buffer
                    .extend_from_slice(record.kind.as_str().as_bytes());
                self.buffer.extend_from_slice(b": ");
            }
            match &self.template {
                Some(t) => {
                    line.clear();
                    t.render_into(record, &mut line);
                    self.buffer.extend_from_slice(line.as_bytes());
                }
                None => serde_json::to_writer(&mut self.buffer, record).map_err(|e| {
                    Error::encode("json", "", e.to_string()).in_component("console sink")
                })?,
            }
            self.buffer.push(b'\n');
        }
        let written = self
            .out
            .write_all(&self.buffer)
            .and_then(|()| self.out.flush());
        match written {
            Ok(()) => {
                batch.delivered();
                Ok(())
            }
            Err(e) => {
                let err = Error::permanent("console sink", "write", e.to_string());
                batch.failed(err.duplicate());
                Err(err)
            }
        }
    }
}
