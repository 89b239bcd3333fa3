//! The sink: prepares the table once, encodes each batch as RowBinary and
//! runs its inserts concurrently, resolving every batch's ack with what
//! ClickHouse said.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use connector_core::{
    Ack, Batch, BatchLimits, CheckReport, Error, Properties, Record, Result, Schema, Sink,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::client::{Client, ErrorClass, RequestError};
use crate::config::{ClickHouseConfig, SPEC};
use crate::insert::{InsertJob, Inserter, Outcome, with_retries};
use crate::server::{ServerInfo, Version};
use crate::table::{Encoder, TableInfo, create_table_sql, qualified};
use crate::types::quote_string;

/// Writes records to a ClickHouse table over the HTTP interface.
///
/// Before the first insert the sink learns the server's version, runs
/// `init_sql` or creates the table from the record schema (with `engine`),
/// and reads the table's columns. Each batch (the pipeline gathers
/// `batch_count` records or waits `batch_duration`, see
/// [`Sink::batch_limits`]) becomes one `INSERT ... FORMAT RowBinary` naming
/// the columns; up to `parallelism` inserts run at once. A batch's ack
/// resolves once ClickHouse has answered its insert:
///
/// - delivered when the rows were accepted;
/// - rejected when ClickHouse refused the data, or when some records could
///   not be converted to their columns (the other records of the batch are
///   inserted; the error names each refused record and why);
/// - failed when retries ran out (`retry_timeout`), or the sink hit an error
///   no retry can fix that is not about the data (table dropped, password
///   changed): then the next `send`/`flush` returns that error and the
///   pipeline stops.
///
/// Records are appended whatever their change kind. See the crate docs for
/// the type mapping and what the sink guarantees about duplicates.
pub struct ClickHouseSink {
    config: ClickHouseConfig,
    client: Arc<Client>,
    ready: Option<Ready>,
    init_done: bool,
    tasks: JoinSet<()>,
    slots: Arc<Semaphore>,
    fatal: Arc<Mutex<Option<Error>>>,
    id_prefix: String,
    next_id: u64,
}

/// What the sink knows once prepared.
struct Ready {
    server: ServerInfo,
    encoder: Encoder,
    inserter: Arc<Inserter>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("config", &self.config)
            .field("server", &self.ready.as_ref().map(|r| &r.server))
            .field("inserts_in_flight", &self.tasks.len())
            .finish()
    }
}

impl ClickHouseSink {
    /// A sink from a typed config. Fails only when the TLS settings cannot
    /// be used (an unreadable `tls.ca_file`); nothing connects yet.
    pub fn new(config: ClickHouseConfig) -> Result<Self> {
        let client = Arc::new(Client::new(&config)?);
        Ok(ClickHouseSink {
            slots: Arc::new(Semaphore::new(config.parallelism.max(1))),
            config,
            client,
            ready: None,
            init_done: false,
            tasks: JoinSet::new(),
            fatal: Arc::new(Mutex::new(None)),
            id_prefix: format!("{:016x}", rand::random::<u64>()),
            next_id: 0,
        })
    }

    /// A sink from the `clickhouse` property map.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        ClickHouseConfig::from_properties(props).and_then(ClickHouseSink::new)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// The server's version, once the sink has connected.
    pub fn server_version(&self) -> Option<Version> {
        self.ready.as_ref().map(|r| r.server.version)
    }

    pub(crate) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn fatal_error(&self) -> Option<Error> {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Error::duplicate)
    }

    /// Drops finished insert tasks (their acks are already resolved).
    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            if let Err(e) = done {
                warn!(error = %e, "clickhouse insert task ended abnormally");
            }
        }
    }

    /// Connects, runs `init_sql` or creates the table, and reads its columns,
    /// retrying transient failures for up to `retry_timeout`.
    async fn prepare(&mut self, schema: &Arc<Schema>) -> Result<()> {
        let retry_timeout = self.config.retry_timeout;
        let ready = with_retries("preparing the table", retry_timeout, || {
            self.try_prepare(schema)
        })
        .await?;
        self.ready = Some(ready);
        Ok(())
    }

    async fn try_prepare(&self, schema: &Arc<Schema>) -> Result<Ready> {
        let index = self.client.current();
        let fail_over = |e: RequestError, what: &str| {
            if matches!(e, RequestError::Connect { .. }) {
                self.client.fail_over(index);
            }
            e.to_error(what)
        };
        let (database, table) = self.config.target();
        let server = detect_server(&self.client, index, &self.config)
            .await
            .map_err(|e| fail_over(e, "connect"))?;
        info!(
            version = %server.version,
            endpoint = %self.client.endpoints()[index],
            "connected to ClickHouse"
        );
        self.check_settings(index, &server).await?;

        if let (false, Some(sql)) = (self.init_done, &self.config.init_sql) {
            for statement in split_statements(sql) {
                // Unqualified names in init_sql mean the configured database,
                // once it exists (init_sql may be what creates it).
                let exists = database_exists(&self.client, index, &self.config.database)
                    .await
                    .map_err(|e| fail_over(e, "run init_sql"))?;
                let params: &[(&str, &str)] = if exists {
                    &[("database", &self.config.database)]
                } else {
                    &[]
                };
                match self.client.query(index, statement, params).await {
                    Ok(_) => {}
                    // `CREATE TABLE t` without IF NOT EXISTS on a second run.
                    Err(RequestError::Server(e)) if matches!(e.code, Some(57 | 82)) => {
                        info!(error = %e, "init_sql: already exists; going on");
                    }
                    Err(e) => return Err(fail_over(e, "run init_sql")),
                }
            }
            info!("init_sql done");
        } else if let (None, Some(engine)) = (&self.config.init_sql, &self.config.engine) {
            let sql = create_table_sql(
                &database,
                &table,
                schema,
                engine,
                self.config.suffix.as_deref(),
                &server,
            );
            debug!(%sql, "creating the table if it does not exist");
            self.client
                .query(index, &sql, &[])
                .await
                .map_err(|e| fail_over(e, "create the table"))?;
        }

        let info = describe(&self.client, index, &database, &table)
            .await
            .map_err(|e| match e {
                RequestError::Server(ref s) if s.class() == ErrorClass::NotFound => {
                    Error::permanent(
                        SPEC.component(),
                        format!("read the columns of {}", qualified(&database, &table)),
                        format!(
                            "{s}; create the table, or set `engine` (and `suffix`) or `init_sql` so the sink creates it"
                        ),
                    )
                }
                other => fail_over(other, "read the table's columns"),
            })?;
        let info = Arc::new(info);
        let mut params: Vec<(String, String)> = self
            .config
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !server.logs_queries {
            // Needed to find out whether an insert whose answer was lost ran.
            params.push(("log_queries".into(), "1".into()));
        }
        if server.async_inserts && !self.config.settings.contains_key("wait_for_async_insert") {
            // An ack must mean written, also where a profile enables async_insert.
            params.push(("wait_for_async_insert".into(), "1".into()));
        }
        Ok(Ready {
            encoder: Encoder::new(info),
            inserter: Arc::new(Inserter {
                client: self.client.clone(),
                params,
                dedup_token: server.dedup_token,
                retry_timeout: self.config.retry_timeout,
                settle_timeout: self.config.timeout,
            }),
            server,
        })
    }

    /// Fails (for good) when `settings` names something the server does not know:
    /// every insert would be refused.
    async fn check_settings(&self, index: usize, server: &ServerInfo) -> Result<()> {
        let unknown = unknown_settings(&self.client, index, &self.config)
            .await
            .map_err(|e| e.to_error("read the server's settings"))?;
        if unknown.is_empty() {
            return Ok(());
        }
        Err(Error::config(
            SPEC.component(),
            "settings",
            format!(
                "ClickHouse {} has no setting {}",
                server.version,
                unknown.join(", ")
            ),
        ))
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("connectors-{}-{}", self.id_prefix, self.next_id)
    }

    /// Encodes `records` and starts their insert, which resolves `ack`.
    async fn dispatch(&mut self, records: &[Record], ack: Ack) -> Result<()> {
        let id = self.next_id();
        let Some(ready) = self.ready.as_mut() else {
            ack.failed(Error::permanent(
                SPEC.component(),
                "insert",
                "not connected",
            ));
            return Ok(());
        };
        let encoded = ready.encoder.encode(records);
        let partial = (!encoded.bad.is_empty()).then(|| bad_records_error(records, &encoded.bad));
        if encoded.rows == 0 {
            if let Some(error) = partial {
                warn!(%error, "clickhouse sink: no record of the batch can be written");
                ack.rejected(error);
            } else {
                ack.delivered();
            }
            return Ok(());
        }
        let job = InsertJob {
            sql: ready.encoder.table().insert_sql(&encoded.columns),
            body: Bytes::from(encoded.body),
            rows: encoded.rows,
            id,
        };
        let inserter = ready.inserter.clone();
        let fatal = self.fatal.clone();
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::permanent(SPEC.component(), "insert", "sink is closed"))?;
        self.tasks.spawn(async move {
            let outcome = inserter.run(&job).await;
            drop(permit);
            match outcome {
                Outcome::Delivered => match partial {
                    Some(error) => {
                        warn!(%error, inserted = job.rows, "clickhouse sink: inserted the batch except refused records");
                        ack.rejected(error);
                    }
                    None => ack.delivered(),
                },
                Outcome::Rejected(error) => {
                    warn!(%error, "clickhouse refused a batch");
                    ack.rejected(error);
                }
                Outcome::Failed(error) => {
                    warn!(%error, "clickhouse insert failed");
                    ack.failed(error);
                }
                Outcome::Fatal(error) => {
                    warn!(%error, "clickhouse insert failed; the sink cannot go on");
                    let mut slot = fatal.lock().unwrap_or_else(|p| p.into_inner());
                    if slot.is_none() {
                        *slot = Some(error.duplicate());
                    }
                    drop(slot);
                    ack.failed(error);
                }
            }
        });
        Ok(())
    }
}

/// One error naming the refused records and why (the first few).
fn bad_records_error(records: &[Record], bad: &[(usize, String)]) -> Error {
    const SHOWN: usize = 5;
    let name = |i: usize| match &records[i].position {
        Some(p) => p.to_string(),
        None => format!("record {i} of the batch"),
    };
    if bad.len() == 1 {
        let (i, reason) = &bad[0];
        return Error::rejected(SPEC.component(), name(*i), reason.clone());
    }
    if bad.iter().all(|(_, r)| *r == bad[0].1) {
        return Error::rejected(
            SPEC.component(),
            format!(
                "{} records ({} to {})",
                bad.len(),
                name(bad[0].0),
                name(bad[bad.len() - 1].0)
            ),
            bad[0].1.clone(),
        );
    }
    let mut reason: Vec<String> = bad
        .iter()
        .take(SHOWN)
        .map(|(i, r)| format!("{}: {r}", name(*i)))
        .collect();
    if bad.len() > SHOWN {
        reason.push(format!("and {} more", bad.len() - SHOWN));
    }
    Error::rejected(
        SPEC.component(),
        format!("{} of {} records", bad.len(), records.len()),
        reason.join("; "),
    )
}

/// Splits `init_sql` into statements at `;` outside quotes (the HTTP
/// interface runs one statement per request).
fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in sql.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c == ';' => {
                out.push(&sql[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    out.push(&sql[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Version and features of the server at endpoint `index`.
pub(crate) async fn detect_server(
    client: &Client,
    index: usize,
    config: &ClickHouseConfig,
) -> std::result::Result<ServerInfo, RequestError> {
    let text = client.query(index, "SELECT version()", &[]).await?;
    let version = Version::parse(&text).unwrap_or_default();
    let settings = client
        .query(
            index,
            "SELECT name, value FROM system.settings \
             WHERE name IN ('insert_deduplication_token', 'log_queries', 'wait_for_async_insert') \
             FORMAT TSV",
            &[],
        )
        .await?;
    let mut info = ServerInfo {
        version,
        dedup_token: false,
        logs_queries: false,
        async_inserts: false,
    };
    for line in settings.lines() {
        match line.split_once('\t') {
            Some(("insert_deduplication_token", _)) => info.dedup_token = true,
            Some(("wait_for_async_insert", _)) => info.async_inserts = true,
            Some(("log_queries", value)) => info.logs_queries = value.trim() == "1",
            _ => {}
        }
    }
    // The user's own settings win: `log_queries=0` there is respected.
    if let Some(v) = config.settings.get("log_queries") {
        info.logs_queries = true;
        if v.trim() == "0" {
            warn!(
                "clickhouse sink: `log_queries=0` turns off the check that keeps a lost insert answer from repeating the insert"
            );
        }
    }
    Ok(info)
}

/// Whether `database` exists.
pub(crate) async fn database_exists(
    client: &Client,
    index: usize,
    database: &str,
) -> std::result::Result<bool, RequestError> {
    let sql = format!(
        "SELECT count() FROM system.databases WHERE name = {}",
        quote_string(database)
    );
    Ok(client.query(index, &sql, &[]).await?.trim() == "1")
}

/// The configured settings the server does not know.
pub(crate) async fn unknown_settings(
    client: &Client,
    index: usize,
    config: &ClickHouseConfig,
) -> std::result::Result<Vec<String>, RequestError> {
    if config.settings.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = config.settings.keys().map(|k| quote_string(k)).collect();
    let known = client
        .query(
            index,
            &format!(
                "SELECT name FROM system.settings WHERE name IN ({}) FORMAT TSV",
                names.join(", ")
            ),
            &[],
        )
        .await?;
    let known: Vec<&str> = known.lines().map(str::trim).collect();
    Ok(config
        .settings
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("`{k}`"))
        .collect())
}

/// The columns of `database.table`.
pub(crate) async fn describe(
    client: &Client,
    index: usize,
    database: &str,
    table: &str,
) -> std::result::Result<TableInfo, RequestError> {
    let text = client
        .query(
            index,
            &format!(
                "DESCRIBE TABLE {} FORMAT JSONEachRow",
                qualified(database, table)
            ),
            &[],
        )
        .await?;
    TableInfo::from_describe(database, table, &text).map_err(|reason| RequestError::Protocol {
        endpoint: client.endpoints()[index].to_string(),
        reason,
    })
}

#[async_trait]
impl Sink for ClickHouseSink {
    fn name(&self) -> &str {
        "clickhouse sink"
    }

    /// `batch_count` records, or whatever arrived within `batch_duration`.
    fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.config.batch_count.max(1),
            max_wait: self.config.batch_duration,
        }
    }

    async fn send(&mut self, batch: Batch) -> Result<()> {
        self.reap();
        if let Some(error) = self.fatal_error() {
            batch.failed(error.duplicate());
            return Err(error);
        }
        if batch.records.is_empty() {
            batch.delivered();
            return Ok(());
        }
        if self.ready.is_none() {
            let schema = batch.records[0].schema.clone();
            if let Err(error) = self.prepare(&schema).await {
                batch.failed(error.duplicate());
                return Err(error);
            }
            self.init_done = true;
        }
        let (records, ack) = batch.into_parts();
        // A batch larger than `batch_count` (sent directly, not through a
        // pipeline) becomes several inserts sharing its ack.
        let chunk = self.config.batch_count.max(1);
        let parts = records.len().div_ceil(chunk);
        let mut ack = Some(ack);
        for (i, part) in records.chunks(chunk).enumerate() {
            let part_ack = if i + 1 == parts {
                ack.take().unwrap_or_default()
            } else {
                ack.clone().unwrap_or_default()
            };
            self.dispatch(part, part_ack).await?;
        }
        Ok(())
    }

    /// Waits until every insert sent so far has been answered (or has run
    /// out of retries) and its ack resolved.
    async fn flush(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done {
                warn!(error = %e, "clickhouse insert task ended abnormally");
            }
        }
        match self.fatal_error() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn check(&mut self, timeout: Duration) -> CheckReport {
        crate::check::run(self, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(
            split_statements(
                "CREATE DATABASE IF NOT EXISTS x; CREATE TABLE x.t (s String DEFAULT 'a;b') ENGINE = Memory;\n"
            ),
            vec![
                "CREATE DATABASE IF NOT EXISTS x",
                "CREATE TABLE x.t (s String DEFAULT 'a;b') ENGINE = Memory"
            ]
        );
    }
}
