//! The ceiling for durable writes on MariaDB: single-row INSERT commits per
//! second, from `conns` concurrent connections. `mysql_commits <url> <seconds> <conns>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("mysql URL");
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut setup = AsyncMysqlConnection::establish(&url).await.expect("connect");
    setup
        .batch_execute("DROP TABLE IF EXISTS bench_commit; CREATE TABLE bench_commit (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB")
        .await
        .expect("table");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (url, done) = (url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = AsyncMysqlConnection::establish(&url).await.expect("connect");
            while Instant::now() < deadline {
                diesel::sql_query("INSERT INTO bench_commit (v) VALUES ('x')").execute(&mut c).await.expect("insert");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    println!("{:.2}", AtomicU64::load(&done, Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64());
}
