//! A real SMTP server on loopback for tests: Python's aiosmtpd, delivering
//! to a Maildir that the test reads back (feature `testing`).
//!
//! Tests that use it are `#[ignore]`d by default; `.ci/run` installs
//! aiosmtpd (`python3 -m pip install aiosmtpd`) and runs them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use mail_parser;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl SmtpSink {
    /// Starts aiosmtpd on a free loopback port. Panics with instructions
    /// when Python or aiosmtpd is missing.
    pub fn start() -> SmtpSink {
        Self::start_on(free_port())
    }

    /// Starts on a given port (to bring a stopped server back).
    pub fn start_on(port: u16) -> SmtpSink {
        let dir = std::env::temp_dir().join("helpdesk-tests").join(format!("maildir-{port}-{}", std::process::id()));
        // aiosmtpd creates the Maildir (new/, cur/, tmp/) only when it is missing.
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("maildir parent");
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 must be installed to run the SMTP tests");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "aiosmtpd exited ({status}): {err}\nInstall it with `python3 -m pip install aiosmtpd` \
                     (.ci/run does)"
                );
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on 127.0.0.1:{port} within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink { child, port, dir }
    }

    /// Raw messages delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else { return Vec::new() };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, p)| std::fs::read(p).ok()).collect()
    }

    /// Waits until at least `n` messages arrived (at most `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (to test delivery failures); `Drop` also does.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses a raw message.
pub fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).expect("a parsable message")
}
