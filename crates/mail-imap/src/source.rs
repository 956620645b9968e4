//! IMAP through async-imap.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt;
use helpdesk_domain::model::MailAccount;
use helpdesk_domain::ports::{ListedMail, MailboxSession, MailboxSource, OpenedMailbox, SourceError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

#[derive(Debug, Clone)]
pub struct ImapOptions {
    /// Every network step (connect, login, each command) gives up after this.
    pub timeout: Duration,
    /// Lets accounts on ports other than 993 log in without TLS when the
    /// server offers no STARTTLS (a server on loopback, tests).
    pub allow_plaintext: bool,
    /// A PEM file of extra trusted root certificates (a private CA), on top
    /// of the WebPKI roots; `None`: those roots only.
    pub ca_file: Option<PathBuf>,
    /// Ports spoken to in TLS from the first byte (IMAPS); every other
    /// port upgrades with STARTTLS. `[993]` by default.
    pub implicit_tls_ports: Vec<u16>,
}

impl Default for ImapOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), allow_plaintext: false, ca_file: None, implicit_tls_ports: vec![993] }
    }
}

/// The certificates of a PEM file; it must hold at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SourceError> {
    let bad = |m: String| SourceError::Config(format!("CA file {}: {m}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// The IMAP servers of the mail accounts.
#[derive(Clone)]
pub struct ImapSource {
    options: ImapOptions,
    tls: TlsConnector,
}

impl ImapSource {
    /// Fails only on a CA file that cannot be read or holds no certificate.
    pub fn new(options: ImapOptions) -> Result<Self, SourceError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = &options.ca_file {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| SourceError::Config(format!("CA file {}: {e}", path.display())))?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { options, tls: TlsConnector::from(Arc::new(config)) })
    }

    /// Port 993 (by default) is implicit TLS; any other port upgrades with
    /// STARTTLS, or stays plain when the options allow it and the server
    /// offers no TLS.
    pub fn implicit_tls(&self, port: u16) -> bool {
        self.options.implicit_tls_ports.contains(&port)
    }

    /// A connection with the server's greeting read, ready to log in.
    async fn client(&self, host: &str, port: u16) -> Result<Client, SourceError> {
        let tcp = timed(self.options.timeout, "connect", TcpStream::connect((host, port))).await?;
        if self.implicit_tls(port) {
            let mut client = async_imap::Client::new(Stream::Tls(Box::new(self.tls_over(host, tcp).await?)));
            greeting(&mut client, self.options.timeout).await?;
            return Ok(client);
        }
        let mut client = async_imap::Client::new(Stream::Plain(tcp));
        greeting(&mut client, self.options.timeout).await?;
        match timed(self.options.timeout, "STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await {
            // No greeting follows STARTTLS.
            Ok(()) => match client.into_inner() {
                Stream::Plain(tcp) => {
                    Ok(async_imap::Client::new(Stream::Tls(Box::new(self.tls_over(host, tcp).await?))))
                }
                Stream::Tls(_) => Err(SourceError::Server("STARTTLS inside TLS".into())),
            },
            Err(_) if self.options.allow_plaintext => Ok(client),
            Err(e) => Err(SourceError::Config(format!(
                "{host}:{port} offers no STARTTLS ({e}) and plaintext IMAP is not allowed (reader.allow_plaintext)"
            ))),
        }
    }

    async fn tls_over(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, SourceError> {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| SourceError::Config(format!("{host} is not a valid TLS server name: {e}")))?;
        timed(self.options.timeout, "TLS handshake", self.tls.connect(name, tcp)).await
    }
}

impl MailboxSource for ImapSource {
    type Session = ImapSession;

    async fn connect(&self, account: &MailAccount, password: &str) -> Result<ImapSession, SourceError> {
        let port: u16 =
            account.port.trim().parse().map_err(|_| {
                SourceError::Config(format!("port {:?} of {} is not a number", account.port, account.user))
            })?;
        let client = self.client(&account.host, port).await?;
        let login = tokio::time::timeout(self.options.timeout, client.login(&account.user, password)).await;
        let session = match login {
            Err(_) => return Err(SourceError::Server(format!("LOGIN timed out after {:?}", self.options.timeout))),
            // The server's words, minus the password should it repeat it.
            Ok(Err((e, _))) => {
                let said = scrub(e.to_string(), password);
                return Err(SourceError::Server(format!("LOGIN as {} refused: {said}", account.user)));
            }
            Ok(Ok(s)) => s,
        };
        Ok(ImapSession { session, timeout: self.options.timeout })
    }
}

/// A logged-in IMAP connection.
pub struct ImapSession {
    session: Session<Stream>,
    timeout: Duration,
}

impl ImapSession {
    async fn uids_with_sizes(&mut self, set: &str) -> Result<Vec<ListedMail>, SourceError> {
        let t = self.timeout;
        let fetches: Vec<_> = timed(t, "UID FETCH", async {
            let stream = self.session.uid_fetch(set, "(UID RFC822.SIZE)").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(fetches
            .iter()
            .filter_map(|f| Some(ListedMail { uid: f.uid?, size: u64::from(f.size.unwrap_or(0)) }))
            .collect())
    }
}

impl MailboxSession for ImapSession {
    async fn open(&mut self, mailbox: &str, after_uid: u32, unseen_only: bool) -> Result<OpenedMailbox, SourceError> {
        let t = self.timeout;
        let selected = timed(t, "SELECT", self.session.select(mailbox)).await?;
        let uid_validity = selected
            .uid_validity
            .ok_or_else(|| SourceError::Server(format!("{mailbox}: the server sent no UIDVALIDITY")))?;
        let mut mail = if selected.exists == 0 {
            Vec::new()
        } else if unseen_only {
            let unseen = timed(t, "UID SEARCH", self.session.uid_search("UNSEEN")).await?;
            let mut uids: Vec<u32> = unseen.into_iter().filter(|u| *u > after_uid).collect();
            uids.sort_unstable();
            if uids.is_empty() { Vec::new() } else { self.uids_with_sizes(&uid_set(&uids)).await? }
        } else {
            // `n:*` also answers the last mail when n is above every UID.
            self.uids_with_sizes(&format!("{}:*", after_uid.saturating_add(1))).await?
        };
        mail.retain(|m| m.uid > after_uid);
        mail.sort_by_key(|m| m.uid);
        mail.dedup_by_key(|m| m.uid);
        let highest = mail.last().map_or(0, |m| m.uid);
        let uid_next = selected.uid_next.unwrap_or(highest.saturating_add(1)).max(highest.saturating_add(1));
        Ok(OpenedMailbox { uid_validity, uid_next, mail })
    }

    async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, SourceError> {
        let t = self.timeout;
        let fetches: Vec<_> = timed(t, "UID FETCH", async {
            // PEEK: reading does not flag the mail seen; only `mark_seen` does.
            let stream = self.session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(fetches.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body()).map(<[u8]>::to_vec))
    }

    async fn mark_seen(&mut self, uid: u32) -> Result<(), SourceError> {
        self.mark_seen_many(&[uid]).await
    }

    /// One `UID FETCH` for them all (the set compressed into runs).
    async fn fetch_many(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, SourceError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.timeout;
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let fetches: Vec<_> = timed(t, "UID FETCH", async {
            // PEEK: reading does not flag the mail seen; only `mark_seen` does.
            let stream = self.session.uid_fetch(uid_set(&sorted), "(UID BODY.PEEK[])").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        // Only what was asked for (a server may add unsolicited FETCH
        // responses), once each, by UID.
        let mut out: Vec<(u32, Vec<u8>)> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .filter(|(uid, _)| sorted.binary_search(uid).is_ok())
            .collect();
        out.sort_by_key(|(uid, _)| *uid);
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// One `UID STORE` for them all.
    async fn mark_seen_many(&mut self, uids: &[u32]) -> Result<(), SourceError> {
        if uids.is_empty() {
            return Ok(());
        }
        failpoint("reader-before-mark-seen");
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let t = self.timeout;
        timed(t, "UID STORE", async {
            let stream = self.session.uid_store(uid_set(&sorted), "+FLAGS.SILENT (\\Seen)").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(())
    }

    async fn logout(mut self) {
        let _ = timed(self.timeout, "LOGOUT", self.session.logout()).await;
    }
}

/// Crash on purpose at a named point, for the tests that kill the reader
/// there (`HELPDESK_FAILPOINT`). Debug builds only.
fn failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("HELPDESK_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

async fn timed<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SourceError::Server(format!("{what}: {e}"))),
        Err(_) => Err(SourceError::Server(format!("{what} timed out after {timeout:?}"))),
    }
}

async fn greeting(client: &mut Client, timeout: Duration) -> Result<(), SourceError> {
    match tokio::time::timeout(timeout, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(SourceError::Server("the server closed the connection before its greeting".into())),
        Ok(Err(e)) => Err(SourceError::Server(format!("greeting: {e}"))),
        Err(_) => Err(SourceError::Server(format!("no greeting within {timeout:?}"))),
    }
}

/// `text` without `password`: as given, as IMAP quotes it, and either of
/// those as Rust's `{:?}` escapes it (async-imap's errors print the
/// server's text that way).
fn scrub(mut text: String, password: &str) -> String {
    if password.is_empty() {
        return text;
    }
    let quoted = password.replace('\\', "\\\\").replace('"', "\\\"");
    let debug = |s: &str| {
        let d = format!("{s:?}");
        d[1..d.len() - 1].to_string()
    };
    let mut forms = vec![debug(&quoted), debug(password), quoted, password.to_string()];
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for form in forms {
        text = text.replace(&form, "[password]");
    }
    text
}

/// `1,3:5,9` from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string())
        } else {
            out.push_str(&format!("{start}:{end}"))
        }
        i += 1;
    }
    out
}

type Client = async_imap::Client<Stream>;

/// The connection under the IMAP client.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1]), "1");
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4_294_967_294, 4_294_967_295]), "4294967294:4294967295");
    }

    #[test]
    fn only_port_993_is_implicit_tls_unless_told() {
        let source = ImapSource::new(ImapOptions::default()).unwrap();
        assert!(source.implicit_tls(993));
        assert!(!source.implicit_tls(143));
        let source = ImapSource::new(ImapOptions { implicit_tls_ports: vec![10993], ..Default::default() }).unwrap();
        assert!(source.implicit_tls(10993) && !source.implicit_tls(993));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let options = ImapOptions { ca_file: Some("/etc/hostname".into()), ..Default::default() };
        assert!(matches!(ImapSource::new(options), Err(SourceError::Config(_))));
        let options = ImapOptions { ca_file: Some("/no/such/ca.pem".into()), ..Default::default() };
        assert!(matches!(ImapSource::new(options), Err(SourceError::Config(_))));
    }

    /// Batches: one UID FETCH for several mails (a UID that is not there is
    /// left out), one UID STORE flagging several.
    #[tokio::test]
    #[ignore = "needs Debian's dovecot-imapd; .ci/run installs it and runs this"]
    async fn several_mails_are_fetched_and_flagged_in_one_request_each() {
        use helpdesk_domain::model::Status;
        let (user, password) = ("buzon@example.test", "clave-2026");
        let imap = crate::testing::Dovecot::start(&[(user, password)]);
        for i in 1..=5 {
            let raw = format!("Message-ID: <m{i}@example.test>\r\nFrom: a@example.test\r\n\r\nCuerpo {i}\r\n");
            imap.append(user, password, "INBOX", raw.as_bytes(), false).await;
        }
        let source = ImapSource::new(ImapOptions { allow_plaintext: true, ..Default::default() }).unwrap();
        let account = MailAccount {
            id: 1,
            host: imap.host.into(),
            user: user.into(),
            sealed_password: Vec::new(),
            port: imap.port.to_string(),
            mailboxes: vec!["INBOX".into()],
            department_id: 1,
            status: Status::Active,
            send_acknowledgement: false,
        };
        let mut session = source.connect(&account, password).await.unwrap();
        let opened = session.open("INBOX", 0, true).await.unwrap();
        assert_eq!(opened.mail.len(), 5);
        let got = session.fetch_many(&[5, 1, 2, 9, 4]).await.unwrap();
        let uids: Vec<u32> = got.iter().map(|(uid, _)| *uid).collect();
        assert_eq!(uids, [1, 2, 4, 5], "by UID, the missing one left out");
        assert!(String::from_utf8_lossy(&got[2].1).contains("Cuerpo 4"));
        assert_eq!(imap.flags(user, password, "INBOX").await.1.iter().filter(|(_, seen)| *seen).count(), 0, "PEEK");
        session.mark_seen_many(&[2, 4, 5]).await.unwrap();
        session.logout().await;
        let flags = imap.flags(user, password, "INBOX").await.1;
        assert_eq!(flags, [(1, false), (2, true), (3, false), (4, true), (5, true)]);
    }

    /// A server that refuses LOGIN repeating the command it got: the
    /// error text must not carry the password.
    #[tokio::test]
    async fn a_refused_login_does_not_carry_the_password() {
        use helpdesk_domain::model::Status;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"* OK fake IMAP ready\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
                let reply = if command.starts_with("STARTTLS") {
                    format!("{tag} BAD no TLS here\r\n")
                } else {
                    format!("{tag} NO [AUTHENTICATIONFAILED] refused: {command}\r\n")
                };
                write.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let source = ImapSource::new(ImapOptions {
            allow_plaintext: true,
            timeout: Duration::from_secs(5),
            ..Default::default()
        })
        .unwrap();
        let account = MailAccount {
            id: 1,
            host: "127.0.0.1".into(),
            user: "buzon@example.test".into(),
            sealed_password: Vec::new(),
            port: port.to_string(),
            mailboxes: vec![],
            department_id: 1,
            status: Status::Active,
            send_acknowledgement: false,
        };
        let Err(err) = source.connect(&account, "Clave\"Buzon\\9931").await else { panic!("LOGIN must fail") };
        let text = err.to_string();
        assert!(text.contains("AUTHENTICATIONFAILED") && text.contains("[password]"), "{text}");
        assert!(!text.contains("Buzon") && !text.contains("9931"), "{text}");
    }
}
