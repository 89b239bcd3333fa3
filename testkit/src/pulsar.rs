//! A Pulsar-protocol broker per test, and a protocol-level proxy in front of it.
//!
//! No Apache Pulsar broker can be installed on the test machines, so the
//! tests run `pulsar-lite` (`scripts/install/30-pulsar.sh`), a broker that
//! speaks the Pulsar binary protocol. [`PulsarBroker`] starts one on a free
//! loopback port with its data in a temp dir, and can stop and restart it on
//! the same port with the same data.
//!
//! `pulsar-lite` differs from Apache Pulsar in two ways that matter to the
//! `pulsar` crate, and [`PulsarProxy`] (a TCP proxy that reads every frame
//! on the wire) bridges them, and does what the test broker does not:
//!
//! - Its `MESSAGE` frames carry no magic number and CRC32C checksum before
//!   the message metadata. The protocol makes them optional and Apache
//!   Pulsar sends them; the `pulsar` crate's decoder requires them. The proxy
//!   adds them to every broker→client frame with a payload (counted by
//!   [`PulsarProxy::checksums_added`]), byte for byte as a producer writes
//!   them.
//! - Its topic lookups answer with its own address; the proxy answers with
//!   its own instead, so that every connection of the client crosses it.
//! - It ignores authentication. The proxy records the `CONNECT` command's
//!   auth method and data ([`PulsarProxy::connects`]) and, with
//!   [`PulsarProxy::require_token`], refuses a wrong or missing token with the
//!   `AuthenticationError` that Apache Pulsar sends, then closes the
//!   connection.
//!
//! [`PulsarProxy::drop_connections`] cuts every open connection, as a broker
//! restart or a network failure would, to test reconnection.
//!
//! Payloads, commands and the broker's behaviour are otherwise passed on
//! untouched: the client still talks the real protocol to a real broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{StreamExt as _, TryStreamExt as _};
use pulsar::message::proto::{self, BaseCommand, ServerError, base_command::Type as CommandType};
use pulsar::message::{Codec, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::{ServerProcess, free_port, require_binary, tools_dir};

/// The Python interpreter of the test venv, which has the `pulsar-client`
/// package (the independent client the tests check against).
pub fn python() -> PathBuf {
    let python = tools_dir().join("venv/bin/python");
    if !python.is_file() {
        panic!(
            "{} is missing; run `{}` first",
            python.display(),
            crate::INSTALL_COMMAND
        );
    }
    python
}

/// Runs a Python script with the test venv's interpreter (which has the
/// `pulsar-client` package) and returns its standard output; panics with
/// its standard error when it fails.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python script failed ({}):\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `pulsar-lite` broker on a free loopback port, killed on drop.
#[derive(Debug)]
pub struct PulsarBroker {
    binary: PathBuf,
    data: tempfile::TempDir,
    port: u16,
    process: Option<ServerProcess>,
}

impl PulsarBroker {
    /// Starts a broker with an empty data dir and waits until it accepts
    /// connections.
    pub fn start() -> PulsarBroker {
        let binary = require_binary("pulsar-lite");
        let data = ServerProcess::temp_dir();
        let port = free_port();
        let config = format!(
            "addr = \"127.0.0.1:{port}\"\ndb_path = \"{}\"\nlog_level = \"warn\"\n\n[metrics]\nenabled = false\n",
            data.path().join("db").display()
        );
        std::fs::write(data.path().join("broker.toml"), config).expect("write broker config");
        let mut broker = PulsarBroker {
            binary,
            data,
            port,
            process: None,
        };
        broker.restart();
        broker
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `pulsar://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("pulsar://127.0.0.1:{}", self.port)
    }

    /// The broker's data dir.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Kills the broker (SIGKILL: nothing is flushed that was not already).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops the broker if it runs, then starts it again on the same port
    /// with the same data, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(&self.binary);
        command
            .arg("--config")
            .arg(self.data.path().join("broker.toml"))
            .current_dir(self.data.path());
        let mut process = ServerProcess::start("pulsar-lite", command, ServerProcess::temp_dir());
        process.wait_ready(self.addr(), Duration::from_secs(30));
        self.process = Some(process);
    }

    /// The running broker's log.
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(ServerProcess::log)
            .unwrap_or_default()
    }
}

/// The authentication a client sent in its `CONNECT` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectAuth {
    /// `auth_method_name`, e.g. `token`.
    pub method: Option<String>,
    /// `auth_data`, e.g. the token's bytes.
    pub data: Option<Vec<u8>>,
}

struct Shared {
    upstream: SocketAddr,
    url: String,
    required_token: Mutex<Option<String>>,
    connects: Mutex<Vec<ConnectAuth>>,
    checksums_added: AtomicU64,
    connections: AtomicU64,
    cut: watch::Sender<u64>,
}

/// A loopback proxy in front of a [`PulsarBroker`] that reads the Pulsar
/// protocol (see the module docs for what it changes). It runs on its own
/// thread, so blocking calls in a test do not stall it.
pub struct PulsarProxy {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PulsarProxy {
    /// A proxy to the broker at `upstream`, listening on a free port.
    pub fn start(upstream: SocketAddr) -> PulsarProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            url: format!("pulsar://{addr}"),
            required_token: Mutex::new(None),
            connects: Mutex::new(Vec::new()),
            checksums_added: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            cut: watch::channel(0).0,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pulsar-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, thread_shared) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("spawn proxy thread");
        PulsarProxy {
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `pulsar://127.0.0.1:<proxy port>`: the URL clients use.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// From now on, a `CONNECT` must carry auth method `token` with exactly
    /// this token; anything else gets `AuthenticationError`.
    pub fn require_token(&self, token: impl Into<String>) {
        *self.shared.required_token.lock().unwrap() = Some(token.into());
    }

    /// The auth of every `CONNECT` seen so far, in order.
    pub fn connects(&self) -> Vec<ConnectAuth> {
        self.shared.connects.lock().unwrap().clone()
    }

    /// How many broker→client frames got the checksum the broker left out.
    pub fn checksums_added(&self) -> u64 {
        self.shared.checksums_added.load(Ordering::Relaxed)
    }

    /// How many client connections were accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Closes every open connection (both sides), as a network failure
    /// would. New connections are accepted as before.
    pub fn drop_connections(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }
}

impl std::fmt::Debug for PulsarProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarProxy")
            .field("url", &self.shared.url)
            .field("upstream", &self.shared.upstream)
            .finish()
    }
}

impl Drop for PulsarProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let mut cut = shared.cut.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve(client, &shared) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Frames up to 64 MiB (Pulsar's default limit is 5 MiB plus headers).
fn frame_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(64 << 20)
        .new_codec()
}

async fn serve(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    // The first frame must be CONNECT: read it whole (and nothing more).
    let size = client.read_u32().await?;
    let mut frame = BytesMut::with_capacity(size as usize + 4);
    frame.put_u32(size);
    frame.resize(size as usize + 4, 0);
    client.read_exact(&mut frame[4..]).await?;
    let connect = Codec
        .decode(&mut frame.clone())
        .ok()
        .flatten()
        .and_then(|m| m.command.connect);
    if let Some(connect) = &connect {
        let auth = ConnectAuth {
            method: connect.auth_method_name.clone(),
            data: connect.auth_data.clone(),
        };
        shared.connects.lock().unwrap().push(auth.clone());
        let required = shared.required_token.lock().unwrap().clone();
        if let Some(token) = required
            && (auth.method.as_deref() != Some("token")
                || auth.data.as_deref() != Some(token.as_bytes()))
        {
            // What Apache Pulsar answers to a refused credential.
            let refusal = command_frame(BaseCommand {
                r#type: CommandType::Error as i32,
                error: Some(proto::CommandError {
                    request_id: u64::MAX,
                    error: ServerError::AuthenticationError as i32,
                    message: "Unable to authenticate".into(),
                }),
                ..Default::default()
            });
            client.write_all(&refusal).await?;
            client.shutdown().await?;
            return Ok(());
        }
    }
    let mut upstream = TcpStream::connect(shared.upstream).await?;
    let _ = upstream.set_nodelay(true);
    upstream.write_all(&frame).await?;

    let (mut client_read, client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let to_broker = tokio::io::copy(&mut client_read, &mut upstream_write);
    let to_client = FramedRead::new(upstream_read, frame_codec())
        .map_ok(|frame| fix_broker_frame(frame, shared))
        .forward(FramedWrite::new(client_write, frame_codec()));
    tokio::select! {
        _ = to_broker => {}
        _ = to_client => {}
    }
    Ok(())
}

/// One whole frame (with its size prefix) holding a command without payload.
fn command_frame(command: BaseCommand) -> BytesMut {
    let mut out = BytesMut::new();
    Codec
        .encode(
            Message {
                command,
                payload: None,
            },
            &mut out,
        )
        .expect("encode command");
    out
}

/// A broker→client frame body (after the size prefix), made what the client
/// expects from Apache Pulsar.
fn fix_broker_frame(body: BytesMut, shared: &Shared) -> Bytes {
    if body.len() < 4 {
        return body.freeze();
    }
    let command_size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let rest_at = 4 + command_size;
    if rest_at < body.len() {
        let rest = &body[rest_at..];
        if rest.starts_with(&[0x0e, 0x01]) {
            return body.freeze();
        }
        // magic 0x0e01, then CRC32C over everything after the checksum
        // (metadata size, metadata, payload), as producers write it.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(rest);
        let mut fixed = BytesMut::with_capacity(body.len() + 6);
        fixed.put_slice(&body[..rest_at]);
        fixed.put_u16(0x0e01);
        fixed.put_u32(crc);
        fixed.put_slice(rest);
        shared.checksums_added.fetch_add(1, Ordering::Relaxed);
        return fixed.freeze();
    }
    // A command without payload: answer lookups with the proxy's address.
    let mut whole = BytesMut::with_capacity(body.len() + 4);
    whole.put_u32(body.len() as u32);
    whole.put_slice(&body);
    match Codec.decode(&mut whole) {
        Ok(Some(Message {
            command:
                mut command @ BaseCommand {
                    lookup_topic_response: Some(_),
                    ..
                },
            ..
        })) => {
            if let Some(lookup) = command.lookup_topic_response.as_mut()
                && lookup.broker_service_url.is_some()
            {
                lookup.broker_service_url = Some(shared.url.clone());
                lookup.broker_service_url_tls = None;
            }
            let mut frame = command_frame(command);
            frame.split_to(4).clear();
            frame.freeze()
        }
        _ => body.freeze(),
    }
}

/// A message for [`produce_with_python`], or one read by [`consume_with_python`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PyMessage {
    /// The payload.
    pub payload: Vec<u8>,
    /// The partition key.
    pub key: Option<String>,
    /// Message properties.
    pub properties: Vec<(String, String)>,
    /// Event time, ms since the epoch (0 or `None`: not set).
    pub event_time_ms: Option<u64>,
    /// The message id as the Python client prints it (read messages only).
    pub message_id: String,
}

impl PyMessage {
    /// A message with this payload.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        PyMessage {
            payload: payload.into(),
            ..PyMessage::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a property.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((name.into(), value.into()));
        self
    }

    /// Sets the event time (ms).
    pub fn event_time(mut self, ms: u64) -> Self {
        self.event_time_ms = Some(ms);
        self
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "payload": hex(&self.payload),
            "key": self.key,
            "properties": self.properties.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "event_time": self.event_time_ms,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

const PRODUCE: &str = r#"
import json, sys, pulsar
url, topic, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
messages = json.loads(sys.stdin.read())
client = pulsar.Client(url, operation_timeout_seconds=30)
kwargs = {}
if options.get("batching"):
    kwargs.update(batching_enabled=True, batching_max_messages=len(messages), batching_max_publish_delay_ms=50)
if options.get("compression"):
    kwargs["compression_type"] = getattr(pulsar.CompressionType, options["compression"])
producer = client.create_producer(topic, **kwargs)
for m in messages:
    args = {}
    if m["key"] is not None:
        args["partition_key"] = m["key"]
    if m["properties"]:
        args["properties"] = m["properties"]
    if m["event_time"]:
        args["event_timestamp"] = m["event_time"]
    if options.get("batching"):
        producer.send_async(bytes.fromhex(m["payload"]), None, **args)
    else:
        producer.send(bytes.fromhex(m["payload"]), **args)
producer.flush()
client.close()
"#;

const CONSUME: &str = r#"
import json, sys, pulsar
url, topic, subscription, count, timeout_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
client = pulsar.Client(url, operation_timeout_seconds=30)
consumer = client.subscribe(topic, subscription, consumer_type=pulsar.ConsumerType.Shared,
                            initial_position=pulsar.InitialPosition.Earliest)
out = []
try:
    while len(out) < count:
        m = consumer.receive(timeout_millis=timeout_ms)
        out.append({"payload": m.data().hex(), "key": m.partition_key() or None,
                    "properties": m.properties(), "event_time": m.event_timestamp() or None,
                    "message_id": str(m.message_id())})
        consumer.acknowledge(m)
except pulsar.Timeout:
    pass
print("RESULT " + json.dumps(out), flush=True)
client.close()
"#;

/// Produces `messages` to `topic` with the Python `pulsar-client`, one send
/// at a time (with `batching`, as one producer-side batch; with
/// `compression` such as `LZ4` or `ZSTD`, compressed).
pub fn produce_with_python(
    url: &str,
    topic: &str,
    messages: &[PyMessage],
    batching: bool,
    compression: Option<&str>,
) {
    let input = serde_json::Value::Array(messages.iter().map(PyMessage::to_json).collect());
    let options = serde_json::json!({"batching": batching, "compression": compression});
    let mut child = Command::new(python())
        .arg("-c")
        .arg(PRODUCE)
        .args([url, topic, &options.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write messages");
    }
    let out = child.wait_with_output().expect("python producer");
    assert!(
        out.status.success(),
        "python producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads up to `count` messages of `topic` from the earliest one through a
/// shared `subscription` with the Python `pulsar-client`, acknowledging
/// them; stops early when no message comes for `idle`.
pub fn consume_with_python(
    url: &str,
    topic: &str,
    subscription: &str,
    count: usize,
    idle: Duration,
) -> Vec<PyMessage> {
    let out = run_python(
        CONSUME,
        &[
            url,
            topic,
            subscription,
            &count.to_string(),
            &idle.as_millis().to_string(),
        ],
    );
    // The client logs to stdout too: the result is the line after the marker.
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from the python consumer:\n{out}"));
    let json: serde_json::Value = serde_json::from_str(line).expect("python output");
    json.as_array()
        .expect("a list")
        .iter()
        .map(|m| PyMessage {
            payload: unhex(m["payload"].as_str().unwrap_or_default()),
            key: m["key"].as_str().map(str::to_owned),
            properties: m["properties"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            event_time_ms: m["event_time"].as_u64(),
            message_id: m["message_id"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}
