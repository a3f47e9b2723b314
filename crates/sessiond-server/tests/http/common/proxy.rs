//! A TCP proxy the tests control: it stands between sessiond and a real server
//! (PostgreSQL, Redis) to take that server away and bring it back, without touching the
//! real server other tests share.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Closes every connection and refuses new ones (accepts and closes them at once).
    Cut,
    /// Holds every connection open and passes nothing, like a network partition or a
    /// frozen host: only timeouts notice. Held connections close when the mode changes.
    Blackhole,
}

/// Stands between sessiond and a server, to take the server away and bring it back.
pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: impl Into<String>) -> Self {
        let upstream: String = upstream.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut mode = modes.subscribe();
                let now = *mode.borrow_and_update();
                match now {
                    Mode::Cut => continue, // dropped: closed at once
                    Mode::Blackhole => {
                        tokio::spawn(async move {
                            let _ = mode.changed().await;
                            drop(client);
                        });
                    }
                    Mode::Forward => {
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = mode.changed() => {
                                    if *mode.borrow_and_update() == Mode::Blackhole {
                                        let _ = mode.changed().await;
                                    }
                                }
                            }
                        });
                    }
                }
            }
        });
        Self { port, mode, accept }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_replace(Mode::Cut);
    }
}
