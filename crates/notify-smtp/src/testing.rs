//! A real SMTP server on loopback for tests: Python's aiosmtpd, delivering
//! to a Maildir that the test reads back (feature `testing`).
//!
//! Tests that use it are `#[ignore]`d by default; `.ci/run` installs
//! aiosmtpd (`python3 -m pip install aiosmtpd`) and runs them.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use mail_parser;

/// A loopback port where nothing listens: a socket bound to it but not
/// listening, so connections are refused, and nobody else can take the
/// port while this is held (no `SO_REUSEADDR`). Keep it for as long as the
/// test needs the port "down"; [`SmtpSink::start_on`] then brings a server
/// up on that very port without ever releasing it.
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl ClosedPort {
    /// Binds a free loopback port (the kernel picks it).
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("bind a free loopback port");
        let port = socket.local_addr().expect("address").port();
        ClosedPort { socket, port }
    }

    /// The bound socket, to hand to a child process that will listen on it.
    fn into_fd(self) -> OwnedFd {
        // A duplicate (close-on-exec); the original closes when `self` drops.
        self.socket.as_fd().try_clone_to_owned().expect("dup the socket")
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// aiosmtpd with `aiosmtpd.handlers.Mailbox`, as `python3 -m aiosmtpd -n -c
/// aiosmtpd.handlers.Mailbox <dir>` runs it, but on the bound socket it gets
/// as its standard input: it listens on it and prints the port once it does.
const SINK_PY: &str = r#"
import asyncio, logging, socket, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

logging.basicConfig(level=logging.ERROR)
sock = socket.socket(fileno=0)
handler = Mailbox(sys.argv[1])

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, data_size_limit=None), sock=sock)
    print(sock.getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    /// Starts aiosmtpd on a free loopback port. Panics with instructions
    /// when Python or aiosmtpd is missing.
    pub fn start() -> SmtpSink {
        Self::start_on(ClosedPort::new())
    }

    /// Starts on a port held closed until now (to bring a server up where
    /// connections were refused). The port is never released in between:
    /// the child listens on the very socket that held it.
    pub fn start_on(closed: ClosedPort) -> SmtpSink {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let port = closed.port;
        let base = std::env::temp_dir().join("helpdesk-tests");
        std::fs::create_dir_all(&base).expect("maildir parent");
        // A directory of its own: a sink started later on the same port
        // must not see this one's mail. aiosmtpd creates the Maildir.
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("maildir-{port}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let err_path = base.join(format!("aiosmtpd-{port}-{}-{n}.log", std::process::id()));
        let err = std::fs::File::create(&err_path).expect("aiosmtpd log");
        let mut child = Command::new("python3")
            .args(["-c", SINK_PY])
            .arg(&dir)
            .stdin(Stdio::from(closed.into_fd()))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("python3 must be installed to run the SMTP tests");
        // The child prints the port once it listens (or exits, closing stdout).
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = rx.recv_timeout(Duration::from_secs(20));
        match ready.as_deref().map(str::trim) {
            Ok(said) if said == port.to_string() => {}
            other => {
                let _ = child.kill();
                let status = child.wait();
                let log = std::fs::read_to_string(&err_path).unwrap_or_default();
                panic!(
                    "aiosmtpd did not listen on 127.0.0.1:{port} within 20 s (said {other:?}, {status:?}): {log}\n\
                     Install it with `python3 -m pip install aiosmtpd` (.ci/run does)"
                );
            }
        }
        let _ = std::fs::remove_file(&err_path);
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses a raw message.
pub fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).expect("a parsable message")
}
