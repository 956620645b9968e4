//! Argon2id on a few dedicated threads (one per core): hashing never stalls
//! the HTTP workers, a burst of logins queues instead of piling up threads,
//! and memory stays bounded. Each hash takes 7 MiB (19 MiB before the cost
//! changed, when this was measured); run on tokio's blocking
//! pool, every one of its (up to 512) threads ended up keeping such a block
//! in its malloc arena. Each thread keeps its working memory between logins
//! (zeroing and faulting in fresh memory per hash cost a quarter of the CPU
//! time of a login) and gives it back after 30 idle seconds.
//!
//! The threads run under Linux's `SCHED_IDLE` policy: a hash gets whatever
//! CPU the rest of the server leaves, and any other request that wakes up
//! takes the core at once. Logins still use every idle cycle (on an idle
//! machine they hash at full speed), but they no longer hold up reads while
//! they saturate the CPU.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use helpdesk_domain::crypto::{Argon2Memory, hash_password, verify_password_in};
use helpdesk_domain::ports::PasswordHasher;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Argon2Memory) + Send>;

/// How long a hashing thread keeps Argon2's memory with nothing to do.
const KEEP_MEMORY_IDLE: Duration = Duration::from_secs(30);

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
                    yield_to_other_work();
                    // Reused from login to login; given back after a quiet spell.
                    let mut memory = Argon2Memory::default();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv_timeout(KEEP_MEMORY_IDLE),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(mpsc::RecvTimeoutError::Timeout) => memory = Argon2Memory::default(),
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
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
        f: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
        fallback: impl FnOnce() -> T + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = T> + Send>> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(f(memory));
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

/// Puts the calling thread under `SCHED_IDLE` (Linux); elsewhere, or if the
/// kernel refuses, the thread keeps the normal policy.
fn yield_to_other_work() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` outlives the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "Argon2 threads keep the normal CPU policy");
        }
    }
}

impl PasswordHasher for BlockingArgon2 {
    fn hash(&self, secret: String) -> Pin<Box<dyn Future<Output = String> + Send>> {
        let again = secret.clone();
        self.run(move |_| hash_password(&secret), move || hash_password(&again))
    }

    fn verify(&self, secret: String, phc: String) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        self.run(move |memory| verify_password_in(&secret, &phc, memory).unwrap_or(false), || false)
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_under_sched_idle() {
        let h = BlockingArgon2::new(1);
        // SAFETY: sched_getscheduler only reads the calling thread's policy.
        let policy = h.run(|_| unsafe { libc::sched_getscheduler(0) }, || -1).await;
        assert_eq!(policy, libc::SCHED_IDLE);
        // SAFETY: as above.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE, "the caller's thread is untouched");
    }

    #[tokio::test]
    async fn a_hashing_thread_keeps_argon2s_memory_between_verifications() {
        let h = BlockingArgon2::new(1);
        assert_eq!(h.run(|m| m.size(), || 1).await, 0);
        let phc = hash_password("Clave-Segura-2026");
        assert!(h.verify("Clave-Segura-2026".into(), phc).await);
        let cost = helpdesk_domain::crypto::ARGON2_MEMORY_KIB as usize * 1024;
        assert_eq!(h.run(|m| m.size(), || 1).await, cost);
    }
}
