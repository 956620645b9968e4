//! A MariaDB of the test's own: `mariadbd` with a private datadir, port and
//! socket, created with `mariadb-install-db`, that a test may kill, freeze
//! and restart. The shared server on 3306 is never touched. Everything it
//! started is killed, and its directory removed, when it is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateMariaDb {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

const MARIADBD: &str = "/usr/sbin/mariadbd";

impl PrivateMariaDb {
    /// Creates the datadir and starts the server; panics with the error log
    /// when it does not come up. A port someone else took meanwhile is
    /// detected from the log and another one is tried.
    pub fn start() -> PrivateMariaDb {
        assert!(
            std::path::Path::new(MARIADBD).exists(),
            "the fault suite needs {MARIADBD} (Debian's mariadb-server; .ci/run has it)"
        );
        let dir = crate::helpers::scratch_dir("mariadb");
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut db = PrivateMariaDb { dir: dir.clone(), port, child: None };
            db.write_config();
            if !dir.join("data/mysql").exists() {
                let out = Command::new("mariadb-install-db")
                    .arg(format!("--defaults-file={}", db.config().display()))
                    .arg("--auth-root-authentication-method=normal")
                    .arg("--skip-test-db")
                    .output()
                    .expect("mariadb-install-db runs");
                assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
            }
            match db.launch() {
                Ok(()) => return db,
                Err(log) => last_log = log,
            }
        }
        panic!("the private MariaDB did not start:\n{last_log}");
    }

    fn config(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    fn write_config(&self) {
        let d = self.dir.display();
        // As root, mariadbd wants to be told it may run as root.
        let user = if unsafe { libc::geteuid() } == 0 { "user = root\n" } else { "" };
        let cnf = format!(
            "[mysqld]\n{user}datadir = {d}/data\nport = {port}\nsocket = {d}/mysqld.sock\npid-file = {d}/mysqld.pid\n\
             log-error = {d}/error.log\nbind-address = 127.0.0.1\nskip-name-resolve\n\
             innodb_buffer_pool_size = 64M\ninnodb_log_file_size = 32M\nmax_connections = 300\n\
             character-set-server = utf8mb4\ncollation-server = utf8mb4_unicode_ci\n\
             [client]\nport = {port}\nsocket = {d}/mysqld.sock\n",
            port = self.port
        );
        std::fs::write(self.config(), cnf).expect("my.cnf");
    }

    /// Starts `mariadbd` on the existing datadir and waits until it answers.
    fn launch(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("error.log");
        let logged_before = std::fs::read_to_string(&log_path).map(|s| s.len()).unwrap_or(0);
        let child = Command::new(MARIADBD)
            .arg(format!("--defaults-file={}", self.config().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {MARIADBD}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.answers() {
                return Ok(());
            }
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("mariadbd exited ({status}):\n{}", &log[logged_before.min(log.len())..]));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        self.kill9();
        Err(format!("mariadbd did not answer within 60 s:\n{log}"))
    }

    /// Whether `SELECT 1` succeeds over TCP now.
    pub fn answers(&self) -> bool {
        Command::new("mariadb")
            .args(["-uroot", "-h127.0.0.1", &format!("-P{}", self.port), "--connect-timeout=1", "-e", "SELECT 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL, returning its rows as tab-separated lines.
    pub fn query(&self, database: &str, sql: &str) -> Vec<String> {
        let out = Command::new("mariadb")
            .args(["-uroot", "-h127.0.0.1", &format!("-P{}", self.port), "-N", "-B", database, "-e", sql])
            .output()
            .expect("the mariadb client runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    /// The single number a query returns.
    pub fn count(&self, database: &str, sql: &str) -> i64 {
        let rows = self.query(database, sql);
        rows.first().and_then(|r| r.trim().parse().ok()).unwrap_or_else(|| panic!("{sql}: {rows:?}"))
    }

    pub fn create_database(&self, name: &str) {
        self.query("mysql", &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"));
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("mariadbd is running")
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server keeps its sockets and answers nothing.
    pub fn freeze(&self) {
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGSTOP) }, 0);
    }

    pub fn thaw(&self) {
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGCONT) }, 0);
    }

    /// Starts it again on the same datadir and port, once it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        if let Err(log) = self.launch() {
            panic!("the private MariaDB did not restart:\n{log}");
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server must be thawed to die cleanly (SIGKILL works either way).
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now (the caller retries if it is taken before use).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
