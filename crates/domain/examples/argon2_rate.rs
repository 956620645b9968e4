//! Raw Argon2id verifications per second on the calling thread, with the
//! parameters the server uses: the ceiling for logins per core.
//!
//! `taskset -c 0 cargo run --release -p helpdesk-domain --example argon2_rate [seconds]`

use std::time::{Duration, Instant};

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let phc = helpdesk_domain::crypto::hash_password("Clave-Segura-2026");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        assert_eq!(helpdesk_domain::crypto::verify_password("Clave-Segura-2026", &phc), Ok(true));
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{{\"argon2_verifications\": {n}, \"seconds\": {secs:.3}, \"per_second\": {:.2}}}", n as f64 / secs);
}
