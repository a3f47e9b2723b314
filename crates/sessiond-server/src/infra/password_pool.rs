//! Password hashing on a fixed set of threads, off the async runtime.
//!
//! argon2id at OWASP parameters costs tens of milliseconds and 19 MiB of one core. Run on
//! the runtime's threads it would stall every token check behind a burst of logins; run on
//! tokio's blocking pool it would spread its 19 MiB buffers over many threads, each of
//! which keeps its freed buffers in its own allocator arena (hundreds of MiB of resident
//! memory after a burst). So `workers` long-lived threads do all hashing, each reusing
//! one working buffer, fed by a queue of at most `queue` waiting logins; when that is
//! full a login fails fast with 503.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use sessiond_core::DomainError;
use sessiond_core::password::{HashingMemory, Password, PasswordHasher};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&PasswordHasher, &mut HashingMemory) + Send>;

#[derive(Clone)]
pub struct PasswordPool {
    jobs: SyncSender<Job>,
}

impl PasswordPool {
    pub fn new(workers: usize, queue: usize, hasher: PasswordHasher) -> Self {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        let hasher = Arc::new(hasher);
        for n in 0..workers.max(1) {
            let (inbox, hasher) = (inbox.clone(), hasher.clone());
            std::thread::Builder::new()
                .name(format!("sessiond-argon2-{n}"))
                .spawn(move || {
                    let mut memory = HashingMemory::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = inbox.lock().expect("password queue lock").recv();
                        let Ok(job) = next else { return };
                        job(&hasher, &mut memory);
                    }
                })
                .expect("spawning a password-hashing thread");
        }
        Self { jobs }
    }

    pub async fn hash(&self, password: Password) -> Result<String, DomainError> {
        self.run(move |h, memory| h.hash(&password, memory)).await
    }

    /// Verifies against `stored`, or does equal work and fails when there is none.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, DomainError> {
        self.run(move |h, memory| h.verify(&password, stored.as_deref(), memory))
            .await
    }

    /// Verifies like [`Self::verify`]; when the password matches a hash made with other
    /// parameters than today's, also the new hash to store in its place.
    pub async fn verify_and_upgrade(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<(bool, Option<String>), DomainError> {
        self.run(move |h, memory| {
            let matches = h.verify(&password, stored.as_deref(), memory);
            let upgrade = match stored {
                Some(old) if matches && h.needs_rehash(&old) => Some(h.hash(&password, memory)),
                _ => None,
            };
            (matches, upgrade)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher, &mut HashingMemory) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |hasher, memory| {
            let _ = done.send(work(hasher, memory));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("sessiond_password_pool_rejections_total").increment(1);
                return Err(DomainError::Overloaded);
            }
            Err(TrySendError::Disconnected(_)) => return Err(DomainError::Overloaded),
        }
        result.await.map_err(|_| DomainError::Overloaded)
    }
}
