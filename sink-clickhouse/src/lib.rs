//! The `clickhouse` sink: records into a ClickHouse table over the HTTP
//! interface, in batches of binary rows (`RowBinary`).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Pipeline, Properties};
//! use sink_clickhouse::ClickHouseSink;
//! use source_generator::GeneratorSource;
//!
//! let source = GeneratorSource::from_properties(&Properties::from_pairs([("template", "devops")]))?;
//! let sink = ClickHouseSink::from_properties(&Properties::from_pairs([
//!     ("dsn", "clickhouse://default:@127.0.0.1:8123/default"),
//!     ("table_name", "devops"),
//!     ("engine", "MergeTree"),
//!     ("suffix", "ORDER BY (hostname, time)"),
//!     ("batch_count", "1000"),
//!     ("batch_duration", "1s"),
//! ]))?;
//! Pipeline::new(source).to(sink).handle_signals(true).run().await?;
//! # Ok(()) }
//! ```
//!
//! # Connecting
//!
//! `dsn` (`clickhouse://user:password@host:8123/db`; `https://` or
//! `?secure=true` for TLS; `h1:8123,h2:8123` for several hosts; other
//! parameters are sent as ClickHouse settings) wins over `hosts` +
//! `username` + `password` + `database`. Hosts are HTTP endpoints (8123, or
//! 8443 for `https://`) used in turn: when one cannot be reached the sink
//! moves to the next. TLS uses rustls with the system trust store, plus
//! `tls.ca_cert` (also spelt `tls.ca_file`); `tls.skip_verify_server` turns verification off.
//!
//! # Properties
//!
//! | property | default | meaning |
//! | --- | --- | --- |
//! | `table_name` | (required) | target table; `db.table` names the database too |
//! | `dsn` | | connection string (wins over the next four) |
//! | `hosts` | | `host:port` list, required without `dsn` |
//! | `username`, `password`, `database` | `default`, empty, `default` | |
//! | `engine`, `suffix` | | create the table from the record schema |
//! | `init_sql` | | SQL run once before the first insert |
//! | `batch_count` | `128` | rows per insert |
//! | `batch_duration` | `100ms` | longest wait for a partial batch |
//! | `timeout` | `30s` | per HTTP request |
//! | `retry_timeout` | `2m` | how long an insert retries before its batch fails |
//! | `parallelism` | `2` | inserts in flight at once |
//! | `settings` | `{}` | ClickHouse settings sent with every insert |
//! | `tls.skip_verify_server` | `false` | accept any server certificate |
//! | `tls.ca_cert` (or `tls.ca_file`) | | extra CA certificates (PEM) |
//!
//! Configuration errors name the property and are all reported at once;
//! the password (also inside `dsn`) never appears in errors, logs or
//! `Debug` output.
//!
//! # The table
//!
//! Before the first insert the sink runs `init_sql` (statements separated by
//! `;`, run once), or, when `engine` is set, `CREATE TABLE IF NOT EXISTS
//! db.t (...) ENGINE = <engine> <suffix>` from the first batch's record
//! schema (a MergeTree engine without `ORDER BY` in `suffix` gets
//! `ORDER BY tuple()`). Then it reads the table's columns with `DESCRIBE
//! TABLE` and maps record fields to columns by name. A field without a
//! column, a column with no default that no field fills, and a field whose
//! type cannot become its column's type are errors that name them.
//!
//! Column types when the sink creates the table (the server's version
//! decides what exists; 18.16 has no `DateTime64`, `Date32` or `Bool`):
//!
//! | record type | ClickHouse type |
//! | --- | --- |
//! | boolean | `Bool` (21.12+), else `UInt8` |
//! | int64 | `Int64` |
//! | float64 | `Float64` |
//! | string, bytes | `String` |
//! | timestamp | `DateTime64(6, 'UTC')` (20.1+), else `DateTime('UTC')` (seconds) |
//! | date | `Date32` (21.9+), else `Date` |
//! | decimal(p, s) | `Decimal(p, s)` |
//! | array\<t\> | `Array(Nullable(t))` for scalar `t`, else `Array(t)` |
//! | struct, map, json | `String` (JSON text) |
//!
//! Nullable fields become `Nullable(..)` columns, except arrays (ClickHouse
//! has no nullable arrays; NULL is written as `[]`).
//!
//! Writing into existing tables converts values to every type the server
//! can hold: `(U)Int8`..`(U)Int256`, `Float32/64`, `Decimal*`, `Bool`,
//! `String`, `FixedString(n)`, `UUID`, `Date`, `Date32`, `DateTime`,
//! `DateTime64(p)`, `Enum8/16` (by name or number), `IPv4/6`, `Nullable`,
//! `LowCardinality`, `Array`, `Tuple` (from structs), `Map` (from maps or
//! structs). A value that does not fit (out of range, unknown enum name,
//! too long for its `FixedString`) refuses its record with the reason; NULL
//! in a column that is not `Nullable` becomes the column's default, as in
//! ClickHouse's own `input_format_null_as_default`.
//!
//! # Delivery
//!
//! The pipeline hands the sink `batch_count` records, or what arrived within
//! `batch_duration` ([`Sink::batch_limits`](connector_core::Sink::batch_limits));
//! each batch is one insert, up to `parallelism` at once. A batch's ack
//! resolves when ClickHouse answers: delivered when the rows are in (the
//! insert has returned, so a process restart of the server keeps them);
//! rejected with ClickHouse's message when the data is refused (bad rows
//! never stop the sink; the pipeline's bad-data policy decides); failed
//! when retries ran out. Connection failures, timeouts and server errors
//! that may heal (too many parts, memory limit, 5xx without a known final
//! code) are retried with exponential backoff for up to `retry_timeout`.
//! Errors no retry can fix and that are not about the data (unknown table,
//! credentials, syntax, unknown setting) fail the batch and stop the sink
//! with ClickHouse's message.
//!
//! While ClickHouse is unreachable, inserts wait and retry and the pipeline
//! slows the source down (backpressure); a graceful shutdown in that time
//! waits up to `retry_timeout` for them. On servers with asynchronous
//! inserts the sink sends `wait_for_async_insert=1` (unless `settings` says
//! otherwise), so an answer always means the rows are written.
//!
//! # Retries without duplicates
//!
//! Every insert has an id, the same on each of its attempts, sent as the
//! `query_id` (and as `insert_deduplication_token` where the server knows
//! that setting, 22.x and later). A failed attempt falls in one of three
//! cases:
//!
//! - Nothing reached the server (connection refused, TLS failure) or the
//!   server answered with an error: nothing was inserted (an insert of up
//!   to `max_insert_block_size` rows, 1 048 576 by default, is one block,
//!   written atomically per partition), so retrying is safe.
//! - The request may have reached the server but no answer came (connection
//!   reset, timeout), or the server says a query with this id is still
//!   running. Before retrying, the sink asks that server: it waits until the
//!   id has left `system.processes`, flushes the query log and looks the id
//!   up in `system.query_log` (inserts are sent with `log_queries=1` where
//!   that is not already the default). A finished insert counts as
//!   delivered and is not sent again; a failed one is retried.
//! - The server cannot tell (it restarted and lost its unflushed query log,
//!   or the log is disabled): the insert is retried. Tables that deduplicate
//!   inserts drop the repeat — `Replicated*MergeTree` on every version
//!   (identical blocks), and on 22.x+ also any MergeTree with
//!   `non_replicated_deduplication_window` set (by the token). Other tables
//!   may then hold the rows twice: delivery is at least once.
//!
//! Records are appended whatever their change kind (insert, update,
//! delete); map kinds to columns in a pipeline step if the table needs them
//! (a `sign` column for `CollapsingMergeTree`, a version for
//! `ReplacingMergeTree`).

#![forbid(unsafe_code)]

mod check;
mod client;
mod config;
mod insert;
mod rowbinary;
mod server;
mod sink;
mod table;
mod types;

pub use config::{ClickHouseConfig, Endpoint, SPEC};
pub use server::Version;
pub use sink::ClickHouseSink;
