//! Argon2id on a few dedicated threads (one per core): hashing never stalls
//! the HTTP workers, a burst of logins queues instead of piling up threads,
//! and memory stays bounded. Each hash takes 19 MiB; run on tokio's blocking
//! pool, every one of its (up to 512) threads ended up keeping such a block
//! in its malloc arena.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, mpsc};

use helpdesk_domain::crypto::{hash_password, verify_password};
use helpdesk_domain::ports::PasswordHasher;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct BlockingArgon2 {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl BlockingArgon2 {
    /// Starts `threads` hashing threads; they end when this is dropped.
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("an Argon2 thread");
        }
        Self { jobs: Mutex::new(tx) }
    }

    /// Runs `f` on a hashing thread; `fallback` if the pool is gone.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
        fallback: impl FnOnce() -> T + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = T> + Send>> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let sent = self.jobs.lock().map(|jobs| jobs.send(job).is_ok()).unwrap_or(false);
        Box::pin(async move {
            match (sent, rx.await) {
                (true, Ok(v)) => v,
                _ => fallback(),
            }
        })
    }
}

impl PasswordHasher for BlockingArgon2 {
    fn hash(&self, secret: String) -> Pin<Box<dyn Future<Output = String> + Send>> {
        let again = secret.clone();
        self.run(move || hash_password(&secret), move || hash_password(&again))
    }

    fn verify(&self, secret: String, phc: String) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        self.run(move || verify_password(&secret, &phc).unwrap_or(false), || false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies_on_its_threads() {
        let h = BlockingArgon2::new(2);
        let phc = h.hash("Clave-Segura-2026".into()).await;
        assert!(h.verify("Clave-Segura-2026".into(), phc.clone()).await);
        assert!(!h.verify("otra".into(), phc).await);
        assert!(!h.verify("x".into(), "no es un hash".into()).await);
    }
}
