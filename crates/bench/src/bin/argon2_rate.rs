//! The ceiling for logins: Argon2id verifications per second on the calling
//! thread, with the server's parameters. `argon2_rate [seconds]`.

use std::time::{Duration, Instant};

fn main() {
    let seconds = helpdesk_bench::seconds_arg(10);
    let phc = helpdesk_domain::crypto::hash_password("Clave-Segura-2026");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        assert_eq!(helpdesk_domain::crypto::verify_password("Clave-Segura-2026", &phc), Ok(true));
        n += 1;
    }
    println!("{:.2}", n as f64 / start.elapsed().as_secs_f64());
}
