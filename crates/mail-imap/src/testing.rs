//! A real IMAP server on loopback for tests: Debian's Dovecot
//! (`dovecot-imapd`), started in a temporary directory with its own
//! configuration, users from a passwd file, Maildir storage; without TLS
//! ([`Dovecot::start`]) or with TLS required ([`Dovecot::start_tls`]: a
//! STARTTLS port and an implicit-TLS port, certificates from a [`TestCa`]).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use tokio::net::TcpStream;

const DOVECOT: &str = "/usr/sbin/dovecot";

/// A Dovecot process serving IMAP on loopback; killed on drop.
pub struct Dovecot {
    child: Child,
    dir: PathBuf,
    /// The address it listens on: 127.0.0.1, or 127.0.0.2 with TLS.
    pub host: &'static str,
    /// IMAP (STARTTLS when started with TLS).
    pub port: u16,
    /// IMAP in TLS from the first byte (like 993), when started with TLS.
    pub tls_port: Option<u16>,
}

/// Dovecot's TLS: its server certificate and key (PEM files).
struct Tls<'a> {
    cert: &'a Path,
    key: &'a Path,
    port: u16,
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
        let dir = std::env::temp_dir().join(format!("helpdesk-ca-{}", helpdesk_domain::crypto::random_token(10)));
        std::fs::create_dir_all(&dir).expect("CA directory");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("the openssl command must be installed to make the test CA");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
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

impl Dovecot {
    /// Starts Dovecot with these `(user, password)` accounts. Panics with
    /// what to install when Dovecot is absent.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        assert!(
            std::path::Path::new(DOVECOT).exists(),
            "{DOVECOT} not found: install Debian's dovecot-imapd (.ci/run does) to run the IMAP tests"
        );
        // Dovecot cannot listen on port 0 and say which port it got, so it
        // gets a port that was free a moment ago; should something else have
        // taken it since, Dovecot says so and exits, and it starts afresh on
        // another.
        const ATTEMPTS: usize = 10;
        for _ in 0..ATTEMPTS {
            if let Some(server) = Self::start_on(free_port(), users) {
                return server;
            }
        }
        panic!("dovecot found its port taken {ATTEMPTS} times in a row");
    }

    /// Starts Dovecot with TLS required (`ssl = required`, no plaintext
    /// authentication), `ca`'s server certificate, a STARTTLS port (`port`)
    /// and an implicit-TLS port (`tls_port`), on 127.0.0.2. Dovecot counts
    /// a client whose address is its own as secure and lets it log in in
    /// clear, so it listens on 127.0.0.2, where clients come from 127.0.0.1:
    /// a client that does not use TLS is refused. The helpers below
    /// (`append`, `flags`, ...) connect from 127.0.0.2, in clear.
    pub fn start_tls(users: &[(&str, &str)], ca: &TestCa) -> Dovecot {
        assert!(
            std::path::Path::new(DOVECOT).exists(),
            "{DOVECOT} not found: install Debian's dovecot-imapd (.ci/run does) to run the IMAP tests"
        );
        const ATTEMPTS: usize = 10;
        for _ in 0..ATTEMPTS {
            let tls = Tls { cert: &ca.cert_pem, key: &ca.key_pem, port: free_port() };
            if let Some(server) = Self::start_with(free_port(), users, Some(tls)) {
                return server;
            }
        }
        panic!("dovecot found its ports taken {ATTEMPTS} times in a row");
    }

    /// Starts on `port`, in a directory of its own; `None` when the port
    /// was taken (Dovecot exited saying it could not listen on it).
    fn start_on(port: u16, users: &[(&str, &str)]) -> Option<Dovecot> {
        Self::start_with(port, users, None)
    }

    fn start_with(port: u16, users: &[(&str, &str)], tls: Option<Tls<'_>>) -> Option<Dovecot> {
        let dir = std::env::temp_dir().join(format!("helpdesk-dovecot-{}", helpdesk_domain::crypto::random_token(10)));
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("dovecot dir");
        // Mail is stored as an unprivileged user when the tests run as root.
        let owner = std::fs::metadata(&dir).expect("dovecot dir").uid();
        let (uid, gid) = if owner == 0 { (65534, 65534) } else { (owner, std::fs::metadata(&dir).unwrap().gid()) };
        let mut passwd = String::new();
        for (user, password) in users {
            passwd.push_str(&format!("{user}:{{PLAIN}}{password}\n"));
            let h = home.join(user);
            std::fs::create_dir_all(&h).expect("home");
            std::os::unix::fs::chown(&h, Some(uid), Some(gid)).expect("chown home");
        }
        std::fs::write(dir.join("passwd"), passwd).expect("passwd");
        // Not root (a CI runner): Dovecot's own processes run as this user
        // too, as it cannot switch to its `dovecot` and `dovenull` users.
        let unprivileged = if owner == 0 {
            String::new()
        } else {
            let id = |flag: &str| {
                let out = Command::new("id").arg(flag).output().expect("id");
                String::from_utf8(out.stdout).expect("a name").trim().to_string()
            };
            let (user, group) = (id("-un"), id("-gn"));
            format!("default_login_user = {user}\ndefault_internal_user = {user}\ndefault_internal_group = {group}\n")
        };
        let d = dir.display();
        let host = if tls.is_some() { "127.0.0.2" } else { "127.0.0.1" };
        let (ssl, imaps) = match &tls {
            None => ("ssl = no\ndisable_plaintext_auth = no\n".to_string(), "    port = 0\n".to_string()),
            Some(t) => (
                format!(
                    "ssl = required\nssl_cert = <{}\nssl_key = <{}\ndisable_plaintext_auth = yes\n",
                    t.cert.display(),
                    t.key.display()
                ),
                format!("    address = {host}\n    port = {}\n    ssl = yes\n", t.port),
            ),
        };
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nprotocols = imap\nlisten = {host}\n{ssl}\
             auth_mechanisms = plain login\nlog_path = {d}/dovecot.log\n\
             mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n{unprivileged}\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = {host}\n    port = {port}\n  }}\n\
             inet_listener imaps {{\n{imaps}  }}\n  chroot =\n}}\nservice anvil {{\n  chroot =\n}}\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).expect("dovecot.conf");
        let stderr = std::fs::File::create(dir.join("dovecot.stderr")).expect("dovecot.stderr");
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn dovecot");
        // From here `Drop` kills it and removes its directory, panics included.
        let tls_port = tls.as_ref().map(|t| t.port);
        let mut server = Dovecot { child, dir, host, port, tls_port };
        // The master logs "starting up" only once its listeners are open; a
        // port taken since it was picked makes it log that it could not
        // listen there, and exit. (A bare connect could reach whoever took it.)
        let taken = format!("listen({host}, ");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !server.log().contains(" starting up ") {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log();
                if log.contains(&taken) {
                    return None;
                }
                panic!("dovecot exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "dovecot did not start on {port} within 15 s: {}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not listen on {port}: {}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Dovecot's log (and what it wrote on its standard error), for
    /// failure messages.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("dovecot.log") + &read("dovecot.stderr")
    }

    async fn session(&self, user: &str, password: &str) -> async_imap::Session<TcpStream> {
        // From the server's own address: Dovecot lets such a client log in
        // in clear even when it requires TLS of everyone else.
        let ip: std::net::IpAddr = self.host.parse().expect("an address");
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind((ip, 0).into()).expect("bind");
        let tcp = socket.connect((ip, self.port).into()).await.expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("greeting");
        client.login(user, password).await.map_err(|(e, _)| e).expect("login to dovecot")
    }

    pub async fn create_mailbox(&self, user: &str, password: &str, mailbox: &str) {
        let mut s = self.session(user, password).await;
        s.create(mailbox).await.expect("CREATE");
        s.logout().await.expect("LOGOUT");
    }

    /// Appends a raw message; `seen` sets its `\Seen` flag.
    pub async fn append(&self, user: &str, password: &str, mailbox: &str, raw: &[u8], seen: bool) {
        let mut s = self.session(user, password).await;
        s.append(mailbox, seen.then_some("(\\Seen)"), None, raw).await.expect("APPEND");
        s.logout().await.expect("LOGOUT");
    }

    /// `(uid, seen)` of every message in a mailbox, and its UIDVALIDITY.
    pub async fn flags(&self, user: &str, password: &str, mailbox: &str) -> (u32, Vec<(u32, bool)>) {
        let mut s = self.session(user, password).await;
        let m = s.select(mailbox).await.expect("SELECT");
        let mut out = Vec::new();
        if m.exists > 0 {
            let fetches: Vec<_> =
                s.uid_fetch("1:*", "(UID FLAGS)").await.expect("FETCH").try_collect().await.expect("FETCH");
            for f in &fetches {
                let seen = f.flags().any(|fl| matches!(fl, async_imap::types::Flag::Seen));
                out.push((f.uid.expect("uid"), seen));
            }
        }
        s.logout().await.expect("LOGOUT");
        out.sort_unstable();
        (m.uid_validity.expect("UIDVALIDITY"), out)
    }

    /// Removes a mailbox's messages (as another client would).
    pub async fn expunge_all(&self, user: &str, password: &str, mailbox: &str) {
        let mut s = self.session(user, password).await;
        s.select(mailbox).await.expect("SELECT");
        s.store("1:*", "+FLAGS.SILENT (\\Deleted)").await.expect("STORE").try_collect::<Vec<_>>().await.expect("STORE");
        s.expunge().await.expect("EXPUNGE").try_collect::<Vec<_>>().await.expect("EXPUNGE");
        s.logout().await.expect("LOGOUT");
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs Debian's dovecot-imapd; .ci/run installs it and runs this"]
    fn a_port_taken_before_dovecot_listens_is_detected_and_another_one_used() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        assert!(Dovecot::start_on(port, &[("ana", "clave")]).is_none(), "a taken port is told from a start");
        let server = Dovecot::start(&[("ana", "clave")]);
        assert_ne!(server.port, port);
        assert!(server.log().contains(" starting up "), "{}", server.log());
    }
}
