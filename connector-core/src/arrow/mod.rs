//! Records as Apache Arrow record batches and back (feature `arrow`).
//!
//! Engines that speak Arrow (DataFusion, Arroyo-style stream processors,
//! analytics databases) take a [`Batch`] as an
//! [`arrow::record_batch::RecordBatch`](::arrow::record_batch::RecordBatch)
//! and hand results back the same way:
//!
//! ```
//! use connector_core::{Batch, ChangeKind, Record, Value};
//!
//! let batch = Batch::new(vec![
//!     Record::from_pairs([("device", Value::from("device_1")), ("number", 42.5.into())]),
//!     Record::from_pairs([("device", Value::from("device_2")), ("number", 7.0.into())])
//!         .with_kind(ChangeKind::Delete),
//! ]);
//! let rb = batch.to_record_batch().unwrap();
//! assert_eq!(rb.num_rows(), 2);
//! assert_eq!(rb.schema().field(2).name(), "_change_kind");
//!
//! let back = Batch::from_record_batch(&rb).unwrap();
//! assert_eq!(back.records, batch.records);
//! ```
//!
//! # Types
//!
//! | record type | Arrow type | back from Arrow |
//! | --- | --- | --- |
//! | boolean | `Boolean` | `Boolean` |
//! | int64 | `Int64` | every signed and unsigned integer (a `UInt64` above `i64::MAX` is an error) |
//! | float64 | `Float64` | `Float16`, `Float32`, `Float64` |
//! | string | `Utf8` | `Utf8`, `LargeUtf8`, `Utf8View`; also `Time32`/`Time64`/`Interval` as their text |
//! | bytes | `Binary` | `Binary`, `LargeBinary`, `BinaryView`, `FixedSizeBinary` |
//! | timestamp | `Timestamp(Microsecond, "+00:00")` | `Timestamp` of any unit and time zone (see below) |
//! | date | `Date32` | `Date32`, `Date64` |
//! | decimal(p, s) | `Decimal128(p, s)` | `Decimal32`/`64`/`128`, and `Decimal256` values that fit 128 bits |
//! | array\<t\> | `List` (nullable items named `item`) | `List`, `LargeList`, `FixedSizeList`, `ListView` |
//! | struct | `Struct` | `Struct` |
//! | map\<k, v\> | `Map` (`entries: struct<keys not null, values>`, unsorted) | `Map` |
//! | json | `Utf8` holding JSON text, with the canonical extension type `arrow.json` in the field metadata | `Utf8` etc. with `arrow.json` |
//! | — | — | `Null` → json (all nulls); `Duration` → int64 microseconds; `Dictionary` and `RunEndEncoded` → their value type |
//!
//! Field nullability is carried both ways. `Union` columns have no
//! counterpart and are an error naming the column.
//!
//! **Time zones.** A record timestamp is an instant (microseconds since the
//! Unix epoch, UTC), so it becomes `Timestamp(Microsecond, Some("+00:00"))`
//! (the zone written as an offset, which Arrow understands without its
//! optional time-zone database and which DataFusion uses for UTC too).
//! Coming back, an Arrow timestamp with a time zone is an instant already
//! (Arrow stores UTC epoch values whatever the zone), so any zone gives the
//! same record value; a timestamp *without* a zone (a wall-clock time) is
//! read as UTC. Seconds and milliseconds are scaled up exactly (overflow is
//! an error), nanoseconds are truncated to microseconds.
//!
//! **JSON.** The dynamic `json` type becomes JSON text in a `Utf8` column
//! marked with the Arrow canonical extension type `arrow.json`
//! (`ARROW:extension:name` field metadata), which engines pass through and
//! JSON functions understand. Reading a json column parses the text back:
//! JSON numbers, strings, booleans, arrays and objects come back as int64 or
//! float64, string, boolean, array and struct values (a timestamp that was
//! stored in a json field comes back as its RFC 3339 string).
//!
//! # Change kind, key and event time
//!
//! A record's [`ChangeKind`](crate::ChangeKind) travels in a column named
//! [`CHANGE_KIND_COLUMN`] (`_change_kind`), by default the last column: a
//! `Dictionary(Int8, Utf8)` whose values are the names of
//! [`ChangeKind::as_str`](crate::ChangeKind::as_str) (`insert`,
//! `update_before`, `update_after`, `delete`, `upsert`), non-null. Reading
//! back, any string-typed column by that name (dictionary, `Utf8`, view) is
//! accepted; a null is `insert`, an unknown name an error. Without the column
//! ([`ArrowOptions::without_change_kind`]) every record must be an insert:
//! converting a delete or an update is an error rather than a silent change
//! of meaning, and records read back are inserts.
//!
//! The message key and the event time may travel too, in columns the options
//! name ([`ArrowOptions::key_column`], `Binary`;
//! [`ArrowOptions::event_time_column`], `Timestamp(Microsecond, "+00:00")`).
//! Headers and source positions stay behind.
//!
//! # Schemaless batches
//!
//! When the records of a batch do not share one schema ([`Batch::schema`]
//! is `None`), one schema is inferred for the batch ([`infer_schema`]):
//! columns in the order they first appear, a column missing from a record
//! is null there, and types merge: equal types stay, int64 with float64
//! becomes float64 (integers above 2^53 lose precision, as in JSON), int64
//! with decimal becomes decimal, decimals widen to hold both, structs merge
//! their fields, arrays and maps merge their element types, and any other
//! mix becomes json (JSON text). A field typed json in a record's own
//! schema (a schemaless decoder's "not known yet", such as a `null` or an
//! empty array) is typed from the values it holds in the batch.
//!
//! # Errors
//!
//! A value that does not fit its column is an [`Error::Encode`] naming the
//! row, the record's source position when it has one, the column (with a
//! path into nested values, `payload.items[2].id`) and the reason: a
//! string in an int64 column, a null in a not-null one, a decimal with more
//! digits than its type, a null map key. The whole conversion fails; use
//! [`ToArrow::convert_skipping_bad`] to set bad records aside instead.
//! Reading Arrow data that has no record counterpart is an
//! [`Error::Decode`] naming the row and column in the same way.
//!
//! Building is columnar: every value goes straight into an Arrow builder
//! (json columns serialize their values to text), without an intermediate
//! JSON document.

mod build;
mod read;
mod types;

use std::sync::Arc;

use ::arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use ::arrow::record_batch::RecordBatch;

use crate::error::{Component, Error, Result};
use crate::record::{BadRecord, Batch, Record};
use crate::schema::{DataType, Schema};

pub use read::FromArrow;
pub use types::{from_arrow_field, from_arrow_schema, infer_schema, to_arrow_field, to_arrow_type};

/// The Arrow crate this module converts to, re-exported so users get the
/// same version.
pub use ::arrow as arrow_crate;

/// How errors name the conversion unless told otherwise.
const DEFAULT_COMPONENT: &str = "arrow conversion";

/// Default name of the change-kind column.
pub const CHANGE_KIND_COLUMN: &str = "_change_kind";

/// Value of the `ARROW:extension:name` field metadata that marks a json column.
pub const JSON_EXTENSION_NAME: &str = "arrow.json";

/// What travels besides a record's values, and under which column names.
///
/// ```
/// use connector_core::arrow::ArrowOptions;
///
/// let options = ArrowOptions::default().key_column("_key").event_time_column("_time");
/// assert_eq!(options.change_kind.as_deref(), Some("_change_kind"));
/// assert_eq!(options.key.as_deref(), Some("_key"));
/// assert!(ArrowOptions::values_only().change_kind.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArrowOptions {
    /// Column of the change kind; `None` leaves it out (every record must
    /// then be an insert). Default [`CHANGE_KIND_COLUMN`].
    pub change_kind: Option<String>,
    /// Column of the message key (`Binary`, nullable); default none.
    pub key: Option<String>,
    /// Column of the event time (`Timestamp(Microsecond, "+00:00")`,
    /// nullable); default none.
    pub event_time: Option<String>,
}

impl Default for ArrowOptions {
    fn default() -> Self {
        ArrowOptions {
            change_kind: Some(CHANGE_KIND_COLUMN.to_owned()),
            key: None,
            event_time: None,
        }
    }
}

impl ArrowOptions {
    /// Values only: no change-kind, key or event-time column.
    pub fn values_only() -> Self {
        ArrowOptions {
            change_kind: None,
            key: None,
            event_time: None,
        }
    }

    /// Puts the change kind in the column `name`.
    pub fn change_kind_column(mut self, name: impl Into<String>) -> Self {
        self.change_kind = Some(name.into());
        self
    }

    /// Leaves the change kind out: only insert records can be converted.
    pub fn without_change_kind(mut self) -> Self {
        self.change_kind = None;
        self
    }

    /// Puts the message key in the column `name`.
    pub fn key_column(mut self, name: impl Into<String>) -> Self {
        self.key = Some(name.into());
        self
    }

    /// Puts the event time in the column `name`.
    pub fn event_time_column(mut self, name: impl Into<String>) -> Self {
        self.event_time = Some(name.into());
        self
    }

    /// The metadata column names in use, in column order.
    fn metadata_columns(&self) -> impl Iterator<Item = &str> {
        [&self.change_kind, &self.key, &self.event_time]
            .into_iter()
            .filter_map(|c| c.as_deref())
    }

    /// Whether `name` is one of the metadata columns.
    fn is_metadata(&self, name: &str) -> bool {
        self.metadata_columns().any(|c| c == name)
    }
}

/// Converts records of one schema to Arrow record batches.
///
/// The target schema is fixed, so every batch has the same Arrow schema
/// (what a table registered in an engine needs). Records whose own schema
/// differs are matched to it by field name: fields the target does not name
/// are left out, target fields a record lacks are null (an error for a
/// not-null field).
///
/// ```
/// use std::sync::Arc;
/// use connector_core::arrow::{ArrowOptions, ToArrow};
/// use connector_core::{DataType, Field, Record, Schema, Value};
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::required("id", DataType::Int64),
///     Field::new("name", DataType::String),
/// ]));
/// let to_arrow = ToArrow::new(schema, ArrowOptions::values_only()).unwrap();
/// let rb = to_arrow
///     .convert(&[Record::from_pairs([("id", Value::Int64(1)), ("extra", Value::Boolean(true))])])
///     .unwrap();
/// assert_eq!(rb.num_columns(), 2);
/// assert!(rb.column(1).is_null(0));
///
/// let err = to_arrow.convert(&[Record::from_pairs([("id", Value::from("x"))])]).unwrap_err();
/// assert!(err.to_string().starts_with("arrow conversion: cannot encode record at row 0 as arrow"), "{err}");
/// assert!(err.to_string().contains("column `id`: expected int64, found string \"x\""), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct ToArrow {
    schema: Arc<Schema>,
    arrow_schema: SchemaRef,
    options: ArrowOptions,
    component: Component,
}

impl ToArrow {
    /// A converter to `schema` (plus the metadata columns of `options`).
    /// Fails when a metadata column has the name of a field.
    pub fn new(schema: Arc<Schema>, options: ArrowOptions) -> Result<Self> {
        let arrow_schema = types::to_arrow_schema(&schema, &options)?;
        Ok(ToArrow {
            schema,
            arrow_schema,
            options,
            component: Component::Borrowed(DEFAULT_COMPONENT),
        })
    }

    /// Names the component in errors (default `arrow conversion`), e.g.
    /// the source whose records are converted.
    pub fn with_component(mut self, component: impl Into<Component>) -> Self {
        self.component = component.into();
        self
    }

    /// The record schema batches are converted to.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The Arrow schema of every batch this converter makes.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    /// The options in use.
    pub fn options(&self) -> &ArrowOptions {
        &self.options
    }

    /// Converts `records`; the first value that does not fit fails the
    /// whole conversion with an error naming its row and column.
    pub fn convert(&self, records: &[Record]) -> Result<RecordBatch> {
        build::build(self, records).map_err(|(_, e)| e)
    }

    /// Converts `records`, setting aside every record that does not fit as
    /// a [`BadRecord`] (with its error) instead of failing. The records
    /// left in `records` are exactly those in the returned batch.
    pub fn convert_skipping_bad(
        &self,
        records: &mut Vec<Record>,
    ) -> Result<(RecordBatch, Vec<BadRecord>)> {
        let mut bad = Vec::new();
        loop {
            match build::build(self, records) {
                Ok(rb) => return Ok((rb, bad)),
                Err((Some(row), e)) if row < records.len() => {
                    bad.push(BadRecord::refused(e, records.remove(row)));
                }
                Err((_, e)) => return Err(e),
            }
        }
    }
}

/// The Arrow schema of records of `schema`, with the metadata columns of
/// `options` after the value columns. Fails when a metadata column has the
/// name of a field.
pub fn to_arrow_schema(schema: &Schema, options: &ArrowOptions) -> Result<SchemaRef> {
    types::to_arrow_schema(schema, options)
}

/// Converts records to one record batch: with their shared schema, or with
/// one inferred from them when they differ (see the [module docs](self)).
pub fn to_record_batch(records: &[Record], options: &ArrowOptions) -> Result<RecordBatch> {
    ToArrow::new(infer_schema(records), options.clone())?.convert(records)
}

/// Converts a record batch back to records; the change-kind, key and
/// event-time columns of `options` fill those parts of each record.
pub fn from_record_batch(batch: &RecordBatch, options: &ArrowOptions) -> Result<Vec<Record>> {
    FromArrow::new(options.clone()).convert(batch)
}

impl Batch {
    /// The records as an Arrow record batch with the default
    /// [`ArrowOptions`] (a `_change_kind` column last); see
    /// [`crate::arrow`]. The schema is the records' shared one, or one
    /// inferred for the batch. Bad records and the ack stay with `self`.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        to_record_batch(&self.records, &ArrowOptions::default())
    }

    /// A batch of the records of an Arrow record batch, read with the
    /// default [`ArrowOptions`] (a `_change_kind` column, when present,
    /// gives each record its kind). The batch needs no acknowledgement; give
    /// it one with [`Batch::replace_ack`].
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Batch> {
        from_record_batch(batch, &ArrowOptions::default()).map(Batch::new)
    }
}

/// Whether a type has a json part anywhere inside.
fn contains_json(t: &DataType) -> bool {
    match t {
        DataType::Json => true,
        DataType::Array(e) => contains_json(e),
        DataType::Map(k, v) => contains_json(k) || contains_json(v),
        DataType::Struct(s) => s.fields().iter().any(|f| contains_json(&f.data_type)),
        _ => false,
    }
}

/// Where a value sits inside a column, for error messages.
#[derive(Debug)]
enum Step {
    Field(String),
    Index(usize),
    Key,
    Value,
}

/// A value that does not fit, with the path from its column down to it
/// (built innermost first while the error travels up).
#[derive(Debug)]
struct FitError {
    path: Vec<Step>,
    reason: String,
}

impl FitError {
    fn new(reason: impl Into<String>) -> Self {
        FitError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn at(mut self, step: Step) -> Self {
        self.path.push(step);
        self
    }

    fn in_field(self, name: &str) -> Self {
        self.at(Step::Field(name.to_owned()))
    }

    /// `payload.items[2].id`
    fn column_path(&self) -> String {
        let mut out = String::new();
        for step in self.path.iter().rev() {
            match step {
                Step::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key => out.push_str(".key"),
                Step::Value => out.push_str(".value"),
            }
        }
        out
    }

    fn message(&self) -> String {
        format!("column `{}`: {}", self.column_path(), self.reason)
    }
}

/// Where a row is, for error messages: `row 3` or `row 3 (topic t partition
/// 0 offset 7)`.
fn row_position(row: usize, record: Option<&Record>) -> String {
    match record.and_then(|r| r.position.as_ref()) {
        Some(p) => format!("row {row} ({p})"),
        None => format!("row {row}"),
    }
}

/// A short rendering of a value for error messages.
fn short(v: &crate::value::Value) -> String {
    const MAX: usize = 40;
    let text = match v {
        crate::value::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// An Arrow schema error as ours.
fn schema_error(reason: impl Into<String>) -> Error {
    Error::decode("arrow", "schema", reason)
}

/// Checks that `arrow` names no metadata column twice and no field twice.
fn check_names(schema: &ArrowSchema) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(schema_error(format!("column `{}` appears twice", f.name())));
        }
    }
    Ok(())
}
