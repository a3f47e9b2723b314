//! Password hashing off the async runtime, on a bounded pool.
//!
//! argon2id at OWASP parameters costs tens of milliseconds of one core. Running it on the
//! runtime's threads would stall every token check behind a burst of logins; running it
//! unbounded on the blocking pool would queue without limit. So at most `workers` hashes
//! run at once and at most `queue` more wait; past that a login fails fast with 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessiond_core::DomainError;
use sessiond_core::password::{Password, PasswordHasher};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordPool {
    hasher: Arc<PasswordHasher>,
    workers: Arc<Semaphore>,
    /// Hashes running or waiting for a worker.
    in_flight: Arc<AtomicUsize>,
    /// Most hashes allowed in flight: workers plus the queue.
    capacity: usize,
}

impl PasswordPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        Self {
            hasher: Arc::new(PasswordHasher::new()),
            workers: Arc::new(Semaphore::new(workers.max(1))),
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity: workers.max(1) + queue,
        }
    }

    pub async fn hash(&self, password: Password) -> Result<String, DomainError> {
        self.run(move |h| h.hash(&password)).await
    }

    /// Verifies against `stored`, or does equal work and fails when there is none.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, DomainError> {
        self.run(move |h| h.verify(&password, stored.as_deref()))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("sessiond_password_pool_rejections_total").increment(1);
            return Err(DomainError::Overloaded);
        }
        let permit = self.workers.clone().acquire_owned().await;
        let hasher = self.hasher.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&hasher)
        })
        .await;
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        result.map_err(|_| DomainError::Overloaded)
    }
}
