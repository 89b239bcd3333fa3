//! The HTTP servers shared by every source of the process: one per
//! configured address, started by the first source that registers an
//! endpoint on it and stopped (its port released) when the last one goes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::Response;
use connector_core::{Error, Result};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{COMPONENT, HttpServerConfig, PushMethod, TlsFiles};
use crate::endpoint::{Consumer, EndpointSettings, Route, method_not_allowed, not_found};
use crate::tls;

/// How long the TLS handshake of a new connection may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections may take to finish their requests once the
/// server stops.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a new server waits for the previous one on its address to
/// release the port.
const RELEASE_WAIT: Duration = Duration::from_secs(10);
/// Pending connections the kernel keeps for `accept`.
const BACKLOG: u32 = 1024;

/// The routes of one path.
#[derive(Clone, Default)]
struct PathRoutes {
    post: Option<Arc<Route>>,
    put: Option<Arc<Route>>,
}

impl PathRoutes {
    fn slot(&mut self, method: PushMethod) -> &mut Option<Arc<Route>> {
        match method {
            PushMethod::Post => &mut self.post,
            PushMethod::Put => &mut self.put,
        }
    }

    fn allowed(&self) -> Vec<PushMethod> {
        let mut allowed = Vec::new();
        if self.post.is_some() {
            allowed.push(PushMethod::Post);
        }
        if self.put.is_some() {
            allowed.push(PushMethod::Put);
        }
        allowed
    }
}

/// The endpoints of a server. Requests read an immutable snapshot; the
/// rare changes (a source registering or leaving) replace it.
#[derive(Default)]
pub(crate) struct RouteTable {
    paths: RwLock<Arc<HashMap<String, PathRoutes>>>,
}

impl RouteTable {
    fn snapshot(&self) -> Arc<HashMap<String, PathRoutes>> {
        self.paths.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update<T>(&self, change: impl FnOnce(&mut HashMap<String, PathRoutes>) -> T) -> T {
        let mut guard = self.paths.write().unwrap_or_else(|p| p.into_inner());
        let mut paths = HashMap::clone(&guard);
        let result = change(&mut paths);
        *guard = Arc::new(paths);
        result
    }

    /// Why `consumer` cannot join the endpoint `path`, if it cannot.
    fn conflict(
        paths: &HashMap<String, PathRoutes>,
        path: &str,
        settings: &EndpointSettings,
        addr: SocketAddr,
    ) -> Option<Error> {
        let existing = match settings.method {
            PushMethod::Post => paths.get(path)?.post.as_ref()?,
            PushMethod::Put => paths.get(path)?.put.as_ref()?,
        };
        let endpoint = format!("{} {path}", settings.method);
        if !(existing.settings.shared && settings.shared) {
            return Some(Error::config(
                COMPONENT,
                "endpoint",
                format!(
                    "`{endpoint}` on {addr} is already served by another httppush source; \
                     set `shared` to `true` on every source of the endpoint to give each of them every record"
                ),
            ));
        }
        existing.settings.differs(settings).map(|property| {
            Error::config(
                COMPONENT,
                property,
                format!(
                    "differs from the other sources sharing `{endpoint}` on {addr}; \
                     sources sharing an endpoint must agree on it"
                ),
            )
        })
    }

    fn add(
        &self,
        path: &str,
        settings: &EndpointSettings,
        consumer: Arc<Consumer>,
        addr: SocketAddr,
    ) -> Result<()> {
        self.update(|paths| {
            if let Some(e) = Self::conflict(paths, path, settings, addr) {
                return Err(e);
            }
            let slot = paths
                .entry(path.to_owned())
                .or_default()
                .slot(settings.method);
            let mut consumers = slot
                .as_ref()
                .map(|r| r.consumers.clone())
                .unwrap_or_default();
            consumers.push(consumer);
            *slot = Some(Arc::new(Route {
                path: path.to_owned(),
                settings: settings.clone(),
                consumers,
            }));
            Ok(())
        })
    }

    fn remove(&self, path: &str, method: PushMethod, consumer_id: u64) {
        self.update(|paths| {
            let Some(routes) = paths.get_mut(path) else {
                return;
            };
            let slot = routes.slot(method);
            if let Some(route) = slot.take() {
                let consumers: Vec<Arc<Consumer>> = route
                    .consumers
                    .iter()
                    .filter(|c| c.id != consumer_id)
                    .cloned()
                    .collect();
                if !consumers.is_empty() {
                    *slot = Some(Arc::new(Route {
                        path: route.path.clone(),
                        settings: route.settings.clone(),
                        consumers,
                    }));
                }
            }
            if routes.post.is_none() && routes.put.is_none() {
                paths.remove(path);
            }
        });
    }

    /// The registration of `consumer_id` at `path`, if present.
    fn has(&self, path: &str, method: PushMethod, consumer_id: u64) -> bool {
        let paths = self.snapshot();
        let route = match method {
            PushMethod::Post => paths.get(path).and_then(|r| r.post.as_ref()),
            PushMethod::Put => paths.get(path).and_then(|r| r.put.as_ref()),
        };
        route.is_some_and(|r| r.consumers.iter().any(|c| c.id == consumer_id))
    }

    fn len(&self) -> usize {
        self.snapshot().len()
    }
}

async fn dispatch(State(routes): State<Arc<RouteTable>>, request: Request<Body>) -> Response {
    let paths = routes.snapshot();
    let path = request.uri().path();
    let Some(entry) = paths.get(path) else {
        return not_found(path);
    };
    let route = match *request.method() {
        Method::POST => entry.post.as_ref(),
        Method::PUT => entry.put.as_ref(),
        _ => None,
    };
    match route {
        Some(route) => route.handle(request).await,
        None => method_not_allowed(request.method().as_str(), path, &entry.allowed()),
    }
}

/// A running server, alive while any registration holds it.
pub(crate) struct Server {
    config: HttpServerConfig,
    local_addr: SocketAddr,
    routes: Arc<RouteTable>,
    shutdown: CancellationToken,
    released: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The accept loop stops, drops the listener (the port is free
        // again) and lets open connections finish.
        self.shutdown.cancel();
    }
}

struct Entry {
    server: Weak<Server>,
    released: CancellationToken,
}

static SERVERS: LazyLock<Mutex<HashMap<SocketAddr, Entry>>> = LazyLock::new(Default::default);

fn servers() -> MutexGuard<'static, HashMap<SocketAddr, Entry>> {
    SERVERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a connection check learns about a configured address.
pub(crate) enum AddressState {
    /// A server of this process serves the address.
    Ours {
        local_addr: SocketAddr,
        tls: Option<TlsFiles>,
        endpoints: usize,
    },
    /// No server of this process serves it.
    Free,
}

/// Whether this process serves `addr`, and whether `path` could join it.
pub(crate) fn inspect(
    addr: SocketAddr,
    path: &str,
    settings: &EndpointSettings,
    consumer_id: Option<u64>,
) -> (AddressState, Option<std::result::Result<bool, Error>>) {
    let server = servers().get(&addr).and_then(|e| e.server.upgrade());
    let Some(server) = server else {
        return (AddressState::Free, None);
    };
    let mine = consumer_id.is_some_and(|id| server.routes.has(path, settings.method, id));
    let endpoint = if mine {
        Ok(true)
    } else {
        match RouteTable::conflict(&server.routes.snapshot(), path, settings, addr) {
            Some(e) => Err(e),
            None => Ok(false),
        }
    };
    let state = AddressState::Ours {
        local_addr: server.local_addr,
        tls: server.config.tls.clone(),
        endpoints: server.routes.len(),
    };
    (state, Some(endpoint))
}

/// A consumer's place on a server: removed from its endpoint on drop; the
/// server stops when its last registration goes.
pub(crate) struct Registration {
    server: Option<Arc<Server>>,
    path: String,
    method: PushMethod,
    consumer_id: u64,
}

impl Registration {
    /// The address the server listens on (the system's choice for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |s| s.local_addr)
    }

    fn leave(&mut self) -> Option<CancellationToken> {
        let server = self.server.take()?;
        server
            .routes
            .remove(&self.path, self.method, self.consumer_id);
        let released = server.released.clone();
        drop(server);
        Some(released)
    }

    /// Leaves the endpoint; when this was the server's last registration,
    /// waits until its port is released.
    pub(crate) async fn close(mut self) {
        let key = self.server.as_ref().map(|s| s.config.addr);
        let Some(released) = self.leave() else {
            return;
        };
        let alive = key.is_some_and(|k| {
            servers()
                .get(&k)
                .is_some_and(|e| e.server.strong_count() > 0)
        });
        if !alive
            && tokio::time::timeout(RELEASE_WAIT, released.cancelled())
                .await
                .is_err()
        {
            warn!("the httppush server did not release its port within {RELEASE_WAIT:?}");
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Adds `consumer` at `path` on the server for `config`, starting the
/// server if none serves that address yet.
pub(crate) async fn register(
    config: &HttpServerConfig,
    path: &str,
    settings: &EndpointSettings,
    consumer: Arc<Consumer>,
) -> Result<Registration> {
    let key = config.addr;
    let registration = |server: Arc<Server>| Registration {
        server: Some(server),
        path: path.to_owned(),
        method: settings.method,
        consumer_id: consumer.id,
    };
    loop {
        let stopping = {
            let mut servers = servers();
            let entry = servers.get(&key);
            match entry.map(|e| (e.server.upgrade(), e.released.clone())) {
                Some((Some(server), _)) => {
                    if server.config.tls != config.tls {
                        let reason = match (&server.config.tls, &config.tls) {
                            (Some(_), None) => {
                                "serves HTTPS (`certfile`, `keyfile`) for other sources; set the same files here"
                            }
                            (None, Some(_)) => {
                                "serves plain HTTP for other sources; remove `certfile` and `keyfile` or use another port"
                            }
                            _ => {
                                "serves HTTPS with other `certfile`/`keyfile` for other sources; use the same files"
                            }
                        };
                        drop(servers);
                        return Err(Error::config(
                            COMPONENT,
                            "certfile",
                            format!("the server on {key} {reason}"),
                        ));
                    }
                    let added = server.routes.add(path, settings, consumer.clone(), key);
                    drop(servers);
                    added?;
                    return Ok(registration(server));
                }
                Some((None, released)) if !released.is_cancelled() => Some(released),
                _ => {
                    let server = start(config)?;
                    server.routes.add(path, settings, consumer.clone(), key)?;
                    servers.insert(
                        key,
                        Entry {
                            server: Arc::downgrade(&server),
                            released: server.released.clone(),
                        },
                    );
                    return Ok(registration(server));
                }
            }
        };
        if let Some(released) = stopping
            && tokio::time::timeout(RELEASE_WAIT, released.cancelled())
                .await
                .is_err()
        {
            return Err(Error::transient(
                COMPONENT,
                format!("listen on {key}"),
                "the previous server on this address is still stopping",
            ));
        }
    }
}

/// Binds the address and spawns the accept loop.
fn start(config: &HttpServerConfig) -> Result<Arc<Server>> {
    let acceptor = match &config.tls {
        Some(files) => {
            let loaded =
                tls::load(files).map_err(|e| Error::config(COMPONENT, e.property, e.reason))?;
            Some(TlsAcceptor::from(loaded.config))
        }
        None => None,
    };
    let listener = bind(config.addr).map_err(|e| {
        Error::permanent(
            COMPONENT,
            format!("listen on {}", config.addr),
            bind_reason(&e),
        )
        .with_source(e)
    })?;
    let local_addr = listener.local_addr().unwrap_or(config.addr);
    let routes = Arc::new(RouteTable::default());
    let shutdown = CancellationToken::new();
    let released = CancellationToken::new();
    let router = Router::new().fallback(dispatch).with_state(routes.clone());
    info!(
        address = %local_addr,
        tls = acceptor.is_some(),
        "httppush server listening"
    );
    tokio::spawn(accept_loop(
        listener,
        acceptor,
        router,
        shutdown.clone(),
        released.clone(),
    ));
    Ok(Arc::new(Server {
        config: config.clone(),
        local_addr,
        routes,
        shutdown,
        released,
    }))
}

/// Binds with `SO_REUSEADDR` (a restarted server need not wait for
/// connections in TIME_WAIT) and a generous backlog.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A bind error in words a user can act on.
pub(crate) fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("the address is already in use by another process ({e})")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("the IP address is not an address of this machine ({e})")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("not allowed to listen on this port ({e}); ports below 1024 need privileges")
        }
        _ => e.to_string(),
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    shutdown: CancellationToken,
    released: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // instead of spinning.
                warn!(error = %e, "httppush server: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let stop = shutdown.clone();
        match &acceptor {
            None => {
                connections.spawn(serve(stream, service, builder, stop));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve(tls, service, builder, stop).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    released.cancel();
    info!(address = ?local, "httppush server stopped listening");
    connections.close();
    if tokio::time::timeout(CLOSE_GRACE, connections.wait())
        .await
        .is_err()
    {
        debug!("httppush server: connections still open after the grace period");
    }
}

async fn serve<I>(
    io: I,
    service: TowerToHyperService<Router>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(CLOSE_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "httppush connection ended with an error");
    }
}
