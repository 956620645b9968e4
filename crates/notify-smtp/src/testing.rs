//! A real SMTP server on loopback for tests: Python's aiosmtpd, delivering
//! to a Maildir that the test reads back (feature `testing`).
//!
//! Tests that use it are `#[ignore]`d by default; `.ci/run` installs
//! aiosmtpd (`python3 -m pip install aiosmtpd`) and runs them.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
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
/// With `starttls` or `tls CERT KEY USER PASSWORD` after the directory it
/// speaks TLS (STARTTLS required before anything else, or from the first
/// byte) and takes mail only after AUTH with that login, over TLS only.
const SINK_PY: &str = r#"
import asyncio, logging, socket, ssl, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

logging.basicConfig(level=logging.ERROR)
sock = socket.socket(fileno=0)
handler = Mailbox(sys.argv[1])
options, wrap = {}, None
if len(sys.argv) > 2:
    mode, cert, key, user, password = sys.argv[2:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    def authenticator(server, session, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)
    options = dict(authenticator=authenticator, auth_required=True)
    if mode == "starttls":
        options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    else:
        options.update(auth_require_tls=False)
        wrap = context

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, data_size_limit=None, **options), sock=sock, ssl=wrap)
    print(sock.getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// How a TLS sink is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// STARTTLS, required before any other command (so before AUTH).
    StartTls,
    /// TLS from the first byte (SMTPS, like port 465).
    Implicit,
}

/// A certificate authority made for one test with the `openssl` command,
/// and a server certificate it signed for `localhost`, 127.0.0.1 and
/// 127.0.0.2; the files live in a directory removed on drop.
pub struct TestCa {
    pub dir: PathBuf,
    /// The CA's certificate (PEM): what a client must trust.
    pub ca_pem: PathBuf,
    /// The server's certificate and key (PEM).
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join("helpdesk-tests").join(format!("ca-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("CA directory");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("the openssl command must be installed to make the test CA");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Helpdesk test CA"]);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&ca);
        let mut csr = vec!["req", "-new"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
        openssl(&csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        TestCa { ca_pem: dir.join("ca.pem"), cert_pem: dir.join("server.pem"), key_pem: dir.join("server.key"), dir }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
        Self::spawn(closed, &[])
    }

    /// Starts a sink that speaks TLS with `ca`'s server certificate and
    /// takes mail only from `login` (`user`, `password`) after AUTH; with
    /// [`SinkTls::StartTls`] every command but EHLO, NOOP and QUIT is refused
    /// before STARTTLS, and AUTH is refused in clear.
    pub fn start_tls(tls: SinkTls, ca: &TestCa, login: (&str, &str)) -> SmtpSink {
        let mode = match tls {
            SinkTls::StartTls => "starttls",
            SinkTls::Implicit => "tls",
        };
        let args = [Path::new(mode), &ca.cert_pem, &ca.key_pem, Path::new(login.0), Path::new(login.1)];
        Self::spawn(ClosedPort::new(), &args)
    }

    fn spawn(closed: ClosedPort, extra: &[&Path]) -> SmtpSink {
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
            .args(extra)
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
