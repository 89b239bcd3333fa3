//! The sockets SMTP connections run on: our own TCP socket with Nagle's
//! algorithm off, plain or wrapped in lettre's TLS.
//!
//! Why: lettre writes a mail's text and its closing `.` in two writes. With
//! Nagle on (lettre's default sockets), the second write waits for the
//! server to acknowledge the first, which Linux delays by up to 40 ms: every
//! mail would take 40 ms longer than the network needs.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

#[allow(deprecated)] // lettre's TLS stream, so TLS settings stay lettre's own
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncTokioStream, TlsParameters};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// Connects to `host:port` with `TCP_NODELAY` set.
pub(crate) async fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// `tcp` after a TLS handshake done by lettre with `tls` (implicit TLS).
#[allow(deprecated)]
pub(crate) async fn tls(
    tcp: TcpStream,
    tls: TlsParameters,
) -> Result<Box<dyn AsyncTokioStream>, lettre::transport::smtp::Error> {
    let peer = tcp.peer_addr().ok();
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    stream.upgrade_tls(tls).await?;
    Ok(Box::new(TlsSocket {
        inner: stream.compat(),
        peer,
    }))
}

/// lettre's TLS stream seen through tokio's I/O traits.
#[allow(deprecated)]
struct TlsSocket {
    inner: Compat<AsyncNetworkStream>,
    peer: Option<SocketAddr>,
}

impl std::fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSocket")
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.peer
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "peer address unknown"))
    }
}
