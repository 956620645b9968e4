//! Argon2id on tokio's blocking pool, at most one hash per core at a time:
//! hashing never stalls the HTTP workers, and a burst of logins queues
//! instead of exhausting memory (each hash takes 19 MiB).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use helpdesk_domain::crypto::{hash_password, verify_password};
use helpdesk_domain::ports::PasswordHasher;
use tokio::sync::Semaphore;

pub struct BlockingArgon2 {
    permits: Arc<Semaphore>,
}

impl BlockingArgon2 {
    pub fn new(parallelism: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(parallelism.max(1))) }
    }
}

impl PasswordHasher for BlockingArgon2 {
    fn hash(&self, secret: String) -> Pin<Box<dyn Future<Output = String> + Send>> {
        let permits = self.permits.clone();
        Box::pin(async move {
            let _permit = permits.acquire_owned().await.ok();
            let again = secret.clone();
            tokio::task::spawn_blocking(move || hash_password(&secret))
                .await
                // The blocking pool is gone (shutting down): hash here.
                .unwrap_or_else(|_| hash_password(&again))
        })
    }

    fn verify(&self, secret: String, phc: String) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let permits = self.permits.clone();
        Box::pin(async move {
            let _permit = permits.acquire_owned().await.ok();
            tokio::task::spawn_blocking(move || verify_password(&secret, &phc).unwrap_or(false)).await.unwrap_or(false)
        })
    }
}
