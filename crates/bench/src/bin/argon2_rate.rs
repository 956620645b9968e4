//! The ceiling for logins: Argon2id verifications per second, with the
//! server's parameters, on `threads` threads at once (default 1: the rate of
//! one core). `argon2_rate [seconds] [threads]`.

use std::time::{Duration, Instant};

use helpdesk_domain::crypto::{Argon2Memory, verify_password_in};

fn main() {
    let seconds = helpdesk_bench::seconds_arg(10);
    let threads: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let phc = helpdesk_domain::crypto::hash_password("Clave-Segura-2026");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    // As the server's hashing threads do: one working memory, reused.
                    let mut memory = Argon2Memory::default();
                    while Instant::now() < deadline {
                        assert_eq!(verify_password_in("Clave-Segura-2026", &phc, &mut memory), Ok(true));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("an Argon2 thread")).sum()
    });
    println!("{:.2}", total as f64 / start.elapsed().as_secs_f64());
}
