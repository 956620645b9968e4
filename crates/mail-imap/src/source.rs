//! IMAP through async-imap.

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

#[derive(Debug, Clone)]
pub struct ImapOptions {
    /// Every network step (connect, login, each command) gives up after this.
    pub timeout: Duration,
    /// Lets accounts on ports other than 993 log in without TLS when the
    /// server offers no STARTTLS (a server on loopback, tests).
    pub allow_plaintext: bool,
}

impl Default for ImapOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), allow_plaintext: false }
    }
}

/// The IMAP servers of the mail accounts.
#[derive(Clone)]
pub struct ImapSource {
    options: ImapOptions,
    tls: TlsConnector,
}

impl ImapSource {
    pub fn new(options: ImapOptions) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { options, tls: TlsConnector::from(Arc::new(config)) }
    }

    /// Port 993 is implicit TLS; any other port upgrades with STARTTLS, or
    /// stays plain when the options allow it and the server offers no TLS.
    pub fn implicit_tls(port: u16) -> bool {
        port == 993
    }

    /// A connection with the server's greeting read, ready to log in.
    async fn client(&self, host: &str, port: u16) -> Result<Client, SourceError> {
        let tcp = timed(self.options.timeout, "connect", TcpStream::connect((host, port))).await?;
        if Self::implicit_tls(port) {
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
            Ok(Err((e, _))) => return Err(SourceError::Server(format!("LOGIN as {} refused: {e}", account.user))),
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
        failpoint("reader-before-mark-seen");
        let t = self.timeout;
        timed(t, "UID STORE", async {
            let stream = self.session.uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)").await?;
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
    fn only_port_993_is_implicit_tls() {
        assert!(ImapSource::implicit_tls(993));
        assert!(!ImapSource::implicit_tls(143));
    }
}
