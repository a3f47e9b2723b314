//! Serving the API's connections: one single-threaded runtime per core, each owning the
//! connections handed to it, with graceful shutdown.
//!
//! A token check is short; on tokio's work-stealing runtime its answer woke other workers
//! (a parked worker is unparked whenever work arrives, and steals), which cost more than the
//! check itself on a small machine. Here the acceptor hands each new connection to the next
//! runtime in turn, and everything that connection does (reading, answering, the tasks
//! its requests spawn) stays on that thread. Background jobs stay on the main runtime.
//!
//! Connections are served as `axum::serve` serves them: HTTP/1.1 and HTTP/2 with prior
//! knowledge, upgrades, `ConnectInfo<SocketAddr>`, the same accept-error handling, and on
//! shutdown every connection finishes the requests it has and closes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tower::ServiceExt;

/// What is served: the router with its layers.
pub trait App:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

type Handoff = (std::net::TcpStream, SocketAddr);

/// The serving runtimes. Dropping this ends them, and with them any connection still open.
pub struct Workers {
    handoff: Vec<mpsc::UnboundedSender<Handoff>>,
    stop: watch::Sender<bool>,
    open: Arc<OpenConnections>,
    _release: watch::Sender<()>,
}

/// Connections handed to a runtime and not yet closed.
#[derive(Default)]
struct OpenConnections {
    count: AtomicUsize,
    closed: Notify,
}

impl OpenConnections {
    fn opened(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn closed(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.closed.notify_waiters();
        }
    }

    async fn none_left(&self) {
        loop {
            let mut notified = pin!(self.closed.notified());
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Workers {
    /// Starts `threads` runtimes (at least one) serving `app`.
    pub fn start<S: App>(threads: usize, app: S) -> io::Result<Self> {
        let (stop, stop_seen) = watch::channel(false);
        let (release, released) = watch::channel(());
        let open = Arc::new(OpenConnections::default());
        let handoff = (0..threads.max(1))
            .map(|index| {
                let (tx, rx) = mpsc::unbounded_channel();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let (app, stop, open, released) = (
                    app.clone(),
                    stop_seen.clone(),
                    open.clone(),
                    released.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("sessiond-http-{index}"))
                    .spawn(move || runtime.block_on(worker(rx, app, stop, open, released)))?;
                Ok(tx)
            })
            .collect::<io::Result<_>>()?;
        Ok(Self {
            handoff,
            stop,
            open,
            _release: release,
        })
    }

    /// Accepts connections on `listener` until `shutdown` resolves, then stops accepting
    /// and waits until every connection has finished its requests and closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut shutdown = pin!(shutdown);
        let mut next = 0usize;
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "could not hand a connection over");
                    continue;
                }
            };
            self.open.opened();
            if self.handoff[next % self.handoff.len()]
                .send((stream, remote))
                .is_err()
            {
                self.open.closed();
            }
            next = next.wrapping_add(1);
        }
        drop(listener);
        let _ = self.stop.send(true);
        self.open.none_left().await;
        Ok(())
    }
}

/// One runtime: serves what it is handed until the [`Workers`] are dropped.
async fn worker<S: App>(
    mut handoff: mpsc::UnboundedReceiver<Handoff>,
    app: S,
    stop: watch::Receiver<bool>,
    open: Arc<OpenConnections>,
    mut released: watch::Receiver<()>,
) {
    let serve = async {
        while let Some((stream, remote)) = handoff.recv().await {
            match TcpStream::from_std(stream) {
                Ok(stream) => {
                    let (app, stop, open) = (app.clone(), stop.clone(), open.clone());
                    tokio::spawn(async move {
                        connection(stream, remote, app, stop).await;
                        open.closed();
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not take a connection over");
                    open.closed();
                }
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = serve => {}
        _ = released.changed() => {}
    }
}

/// One connection, until it closes; on shutdown it finishes its requests and closes.
async fn connection<S: App>(
    stream: TcpStream,
    remote: SocketAddr,
    app: S,
    mut stop: watch::Receiver<bool>,
) {
    let service = app.map_request(move |req: Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(remote));
        req
    });
    let builder = Builder::new(TokioExecutor::new());
    let mut conn =
        pin!(builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service)
        ));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// As `axum::serve`: a connection error is the client's; anything else (out of file
/// descriptors) is logged and waited out.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
