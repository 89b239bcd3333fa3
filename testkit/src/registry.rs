//! A schema registry stand-in speaking the Confluent Schema Registry REST
//! API over a real loopback socket.
//!
//! A schema registry is a service that cannot run on the test machines, so
//! the tests of the Avro codecs and of the connectors that use them talk to
//! this small HTTP server instead. It implements the part of the documented
//! API that clients use to read and write the Confluent wire format:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /schemas/ids/{id}` | `{"schema": ...}` (plus `schemaType` unless Avro) |
//! | `GET /subjects` | the subject names |
//! | `POST /subjects/{subject}/versions` | `{"id": ...}`; the same schema again keeps its id |
//! | `GET /subjects/{subject}/versions/{version}` | `{"subject", "id", "version", "schema"}`; `latest` works |
//!
//! Errors have the registry's JSON shape (`{"error_code": 40403, "message":
//! "Schema 9 not found"}`). Avro schemas are checked with `apache-avro` on
//! registration (`42201 Invalid schema` otherwise). Optional Basic auth, a
//! log of every call, and injected `503` failures let tests check caching,
//! credentials and retries.
//!
//! The server runs on its own thread with its own runtime, so it can be
//! started and dropped from synchronous tests and from async ones alike.
//!
//! ```
//! let registry = testkit::registry::SchemaRegistry::start();
//! let id = registry.add("orders-value", r#"{"type": "record", "name": "O", "fields": [{"name": "id", "type": "long"}]}"#);
//! assert_eq!(id, 1);
//! assert!(registry.url().starts_with("http://127.0.0.1:"));
//! assert!(registry.calls().is_empty(), "`add` is not a call over HTTP");
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

/// One registered schema; its id is its index in the list plus one.
#[derive(Debug, Clone)]
struct Stored {
    subject: String,
    schema: String,
    /// `AVRO`, `PROTOBUF` or `JSON`.
    schema_type: String,
}

#[derive(Default)]
struct Registry {
    schemas: Mutex<Vec<Stored>>,
    fail_next: AtomicUsize,
    calls: Mutex<Vec<String>>,
    /// The expected `Authorization` header.
    auth: Option<String>,
}

type Shared = Arc<Registry>;

impl Registry {
    /// Logs the call; answers for it when a failure is injected or the
    /// credentials are wrong.
    fn check(&self, headers: &HeaderMap, call: String) -> Option<Response> {
        self.calls.lock().unwrap().push(call);
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                50301,
                "leader not available",
            ));
        }
        if let Some(expected) = &self.auth {
            let given = headers.get("authorization").and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                return Some(error(StatusCode::UNAUTHORIZED, 401, "Unauthorized"));
            }
        }
        None
    }

    fn add(&self, subject: &str, schema: &str, schema_type: &str) -> u32 {
        let mut schemas = self.schemas.lock().unwrap();
        let existing = schemas
            .iter()
            .position(|s| s.subject == subject && s.schema == schema);
        let index = existing.unwrap_or_else(|| {
            schemas.push(Stored {
                subject: subject.to_owned(),
                schema: schema.to_owned(),
                schema_type: schema_type.to_owned(),
            });
            schemas.len() - 1
        });
        index as u32 + 1
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// A running registry stand-in; stops when dropped.
pub struct SchemaRegistry {
    shared: Shared,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SchemaRegistry {
    /// Starts a registry without authentication on a free loopback port.
    pub fn start() -> SchemaRegistry {
        Self::serve(Registry::default())
    }

    /// Starts a registry that answers only requests with HTTP Basic auth
    /// for `user` and `password` (the registry's API key and secret);
    /// others get `401`.
    pub fn with_basic_auth(user: &str, password: &str) -> SchemaRegistry {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::serve(Registry {
            auth: Some(format!("Basic {token}")),
            ..Registry::default()
        })
    }

    fn serve(registry: Registry) -> SchemaRegistry {
        let shared = Arc::new(registry);
        let app = Router::new()
            .route("/schemas/ids/{id}", get(by_id))
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}/versions", post(register))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .with_state(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("schema-registry".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("registry runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop.await;
                        })
                        .await
                        .unwrap();
                });
            })
            .expect("start the registry thread");
        SchemaRegistry {
            shared,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the value of `schema_registry_address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers an Avro `schema` under `subject` directly (not over HTTP,
    /// so it is not in [`SchemaRegistry::calls`]) and returns its id. Ids
    /// count from 1 in registration order; the same schema under the same
    /// subject keeps its id.
    pub fn add(&self, subject: &str, schema: &str) -> u32 {
        self.shared.add(subject, schema, "AVRO")
    }

    /// The text of the schema with id `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        let schemas = self.shared.schemas.lock().unwrap();
        (id as usize)
            .checked_sub(1)
            .and_then(|i| schemas.get(i))
            .map(|s| s.schema.clone())
    }

    /// The ids registered under `subject`, oldest first.
    pub fn ids(&self, subject: &str) -> Vec<u32> {
        let schemas = self.shared.schemas.lock().unwrap();
        schemas
            .iter()
            .enumerate()
            .filter(|(_, s)| s.subject == subject)
            .map(|(i, _)| i as u32 + 1)
            .collect()
    }

    /// Every request so far, as `METHOD /path`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The next `n` requests fail with `503` (error code 50301), as a
    /// registry without a leader answers.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn by_id(State(r): State<Shared>, headers: HeaderMap, Path(id): Path<u32>) -> Response {
    if let Some(resp) = r.check(&headers, format!("GET /schemas/ids/{id}")) {
        return resp;
    }
    let schemas = r.schemas.lock().unwrap();
    match (id as usize).checked_sub(1).and_then(|i| schemas.get(i)) {
        Some(s) if s.schema_type == "AVRO" => Json(json!({"schema": s.schema})).into_response(),
        Some(s) => Json(json!({"schema": s.schema, "schemaType": s.schema_type})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Schema {id} not found"),
        ),
    }
}

async fn subjects(State(r): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(resp) = r.check(&headers, "GET /subjects".to_owned()) {
        return resp;
    }
    let mut names: Vec<String> = r
        .schemas
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.subject.clone())
        .collect();
    names.sort();
    names.dedup();
    Json(names).into_response()
}

async fn register(
    State(r): State<Shared>,
    headers: HeaderMap,
    Path(subject): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Some(resp) = r.check(&headers, format!("POST /subjects/{subject}/versions")) {
        return resp;
    }
    let Some(schema) = body["schema"].as_str() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            "Invalid schema: no `schema` field",
        );
    };
    let schema_type = body["schemaType"].as_str().unwrap_or("AVRO").to_owned();
    if !["AVRO", "PROTOBUF", "JSON"].contains(&schema_type.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            &format!("Invalid schema type {schema_type}"),
        );
    }
    if schema_type == "AVRO"
        && let Err(e) = apache_avro::Schema::parse_str(schema)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            &format!("Invalid schema: {e}"),
        );
    }
    let id = r.add(&subject, schema, &schema_type);
    Json(json!({"id": id})).into_response()
}

async fn version(
    State(r): State<Shared>,
    headers: HeaderMap,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    if let Some(resp) = r.check(
        &headers,
        format!("GET /subjects/{subject}/versions/{version}"),
    ) {
        return resp;
    }
    let schemas = r.schemas.lock().unwrap();
    let versions: Vec<(usize, &Stored)> = schemas
        .iter()
        .enumerate()
        .filter(|(_, s)| s.subject == subject)
        .map(|(i, s)| (i + 1, s))
        .collect();
    if versions.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            40401,
            &format!("Subject '{subject}' not found."),
        );
    }
    let wanted = match version.as_str() {
        "latest" | "-1" => Some(versions.len()),
        n => n.parse::<usize>().ok().filter(|n| *n >= 1),
    };
    match wanted.and_then(|v| versions.get(v - 1).map(|found| (v, found))) {
        Some((v, (id, s))) => {
            let mut answer =
                json!({"subject": subject, "id": id, "version": v, "schema": s.schema});
            if s.schema_type != "AVRO" {
                answer["schemaType"] = json!(s.schema_type);
            }
            Json(answer).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            40402,
            &format!("Version {version} not found."),
        ),
    }
}
