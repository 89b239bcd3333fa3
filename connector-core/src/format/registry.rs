//! A Confluent schema registry client: schemas by id, registration under a
//! subject, and a subject's latest version, with HTTP Basic auth and
//! retries with backoff on transient failures.
//!
//! The HTTP calls (URL layout, `deleted=true` lookups, request bodies,
//! references, Basic auth) come from `schema_registry_converter`; this
//! module adds the retry policy, TLS through rustls with the `ring`
//! provider, and errors that say which registry, which id or subject, and
//! whether retrying can help. The crate's own decoders are not used: they
//! are async per message and produce `apache_avro` values, where the codecs
//! here decode synchronously straight into records (see
//! [`avro`](super::avro)).

use std::sync::Arc;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_referenced_schema, get_schema_by_id, get_schema_by_subject_and_version,
    post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RegisteredSchema, SchemaType, SuppliedSchema,
};

use crate::error::{Error, Result};
use crate::format::RegistryConfig;
use crate::tls::TlsSettings;

/// How errors name the registry client.
const COMPONENT: &str = "schema registry";

/// A schema as the registry stores it, with the schemas it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySchema {
    /// The registry's id of the schema.
    pub id: u32,
    /// The schema text (Avro JSON).
    pub schema: String,
    /// Texts of the schemas it references (transitively), dependencies first.
    pub references: Vec<String>,
}

/// Retries of transient failures: `attempts` tries in all, waiting
/// `initial`, then twice as long each time, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// First wait.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// A schema registry client.
#[derive(Clone)]
pub struct RegistryClient {
    settings: Arc<SrSettings>,
    address: String,
    backoff: Backoff,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings hold the credentials: print only the address.
        f.debug_struct("RegistryClient")
            .field("address", &self.address)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for the registry at `config.address` (`http://` or `https://`).
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let address = config.address.trim_end_matches('/').to_owned();
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(Error::config(
                COMPONENT,
                "schema_registry_address",
                format!("expected an http:// or https:// URL, got `{address}`"),
            ));
        }
        let mut builder = SrSettings::new_builder(address.clone());
        builder.set_timeout(Duration::from_secs(10));
        if let Some(key) = &config.api_key {
            builder.set_basic_authorization(
                key.expose(),
                config.api_secret.as_ref().map(|s| s.expose()),
            );
        }
        let client = crate::http::client_builder(COMPONENT, &TlsSettings::default())?
            .connect_timeout(Duration::from_secs(5));
        let settings = builder
            .build_with(client)
            .map_err(|e| Error::permanent(COMPONENT, "build HTTP client", e.error))?;
        Ok(RegistryClient {
            settings: Arc::new(settings),
            address,
            backoff: Backoff::default(),
        })
    }

    /// Sets the retry policy.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The registry's base URL.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The schema with id `id` (`GET /schemas/ids/{id}`), with its references.
    /// An unknown id is a permanent error saying so.
    pub async fn schema_by_id(&self, id: u32) -> Result<RegistrySchema> {
        let operation = format!("get schema id {id} from {}", self.address);
        let registered = self
            .retry(&operation, || get_schema_by_id(id, &self.settings))
            .await?;
        self.with_references(registered, &operation).await
    }

    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`)
    /// and returns its id; a schema already registered gets its existing id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let operation = format!(
            "register a schema under subject `{subject}` at {}",
            self.address
        );
        let registered = self
            .retry(&operation, || {
                post_schema(
                    &self.settings,
                    subject.to_owned(),
                    SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned()),
                )
            })
            .await?;
        Ok(registered.id)
    }

    /// The latest schema of `subject` (`GET /subjects/{subject}/versions/latest`),
    /// or `None` when the subject does not exist.
    pub async fn latest(&self, subject: &str) -> Result<Option<RegistrySchema>> {
        let operation = format!(
            "get the latest schema of subject `{subject}` from {}",
            self.address
        );
        match self
            .retry(&operation, || {
                get_schema_by_subject_and_version(&self.settings, subject, None)
            })
            .await
        {
            Ok(registered) => Ok(Some(self.with_references(registered, &operation).await?)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn with_references(
        &self,
        registered: RegisteredSchema,
        operation: &str,
    ) -> Result<RegistrySchema> {
        let mut references = Vec::new();
        let mut pending: Vec<_> = registered.references.to_vec();
        let mut seen = std::collections::HashSet::new();
        while let Some(r) = pending.pop() {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            let child = self
                .retry(operation, || get_referenced_schema(&self.settings, &r))
                .await?;
            pending.extend(child.references.iter().cloned());
            references.insert(0, child.schema);
        }
        Ok(RegistrySchema {
            id: registered.id,
            schema: registered.schema,
            references,
        })
    }

    async fn retry<T, F, Fut>(&self, operation: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, SRCError>>,
    {
        let mut wait = self.backoff.initial;
        let attempts = self.backoff.attempts.max(1);
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let transient = is_transient(&e);
                    if !transient || attempt >= attempts {
                        return Err(to_error(operation, &e, transient, attempt));
                    }
                    tracing::warn!(
                        registry = %self.address,
                        attempt,
                        error = %describe(&e),
                        "schema registry call failed; retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.backoff.max);
                    attempt += 1;
                }
            }
        }
    }
}

/// The registry's answer in words: its message and error code, or the
/// transport failure.
fn describe(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

fn status(e: &SRCError) -> Option<u16> {
    let text = &e.error;
    let at = text.find("failed with status ")? + "failed with status ".len();
    text[at..].get(..3)?.parse().ok()
}

/// Connection failures, timeouts, 408, 429 and 5xx may heal.
fn is_transient(e: &SRCError) -> bool {
    e.retriable || matches!(status(e), Some(408 | 429 | 500..=599))
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { reason, retryable: false, .. } if reason.contains("status 404"))
}

fn to_error(operation: &str, e: &SRCError, transient: bool, attempts: u32) -> Error {
    let mut reason = match status(e) {
        Some(code) => {
            let registry = e
                .cause
                .as_deref()
                .and_then(|c| c.split_once("message: "))
                .map_or_else(
                    || e.cause.clone().unwrap_or_default(),
                    |(_, m)| m.to_owned(),
                );
            let code_text = e
                .cause
                .as_deref()
                .and_then(|c| c.strip_prefix("error_code: "))
                .and_then(|c| c.split(',').next())
                .filter(|c| *c != "0")
                .map(|c| format!(", error code {c}"))
                .unwrap_or_default();
            format!("the registry answered status {code}{code_text}: {registry}")
        }
        None => describe(e),
    };
    if matches!(status(e), Some(401 | 403)) {
        reason.push_str(" (check schema_registry_api_key and schema_registry_api_secret)");
    }
    if transient {
        Error::transient(
            COMPONENT,
            operation.to_owned(),
            format!("{reason} (gave up after {attempts} attempts)"),
        )
    } else {
        Error::permanent(COMPONENT, operation.to_owned(), reason)
    }
}
