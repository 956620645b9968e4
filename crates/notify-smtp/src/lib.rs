//! The mail notifier adapter: SMTP through lettre, asynchronous and pooled.
//!
//! The words of every e-mail (subject, text, HTML) are written in
//! [`templates`] from the content the domain asks for.
//!
//! Messages are multipart/alternative (plain text and, when given, HTML),
//! carry a Message-ID (generated when the caller gives none) and any extra
//! headers the domain asks for (`Auto-Submitted`, `In-Reply-To`, ...).
//!
//! TLS (STARTTLS or implicit) verifies the server against the WebPKI roots
//! and, when `ca_file` names one, the certificates of that PEM file too.
//! Error texts never carry the password: whatever the server sent back is
//! scrubbed of it (as given and in the base64 forms AUTH sends it in).

use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;

use helpdesk_domain::model::OutgoingMail;
use helpdesk_domain::ports::{MailNotifier, NotifyError};
use lettre::message::header::{HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (loopback relays, tests).
    None,
    /// STARTTLS on the submission port (587), required.
    StartTls,
    /// Implicit TLS (465).
    Tls,
}

impl Security {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Some(Security::None),
            "starttls" => Some(Security::StartTls),
            "tls" | "smtps" => Some(Security::Tls),
            _ => None,
        }
    }
}

/// Checks an address such as `Mesa de ayuda <ayuda@example.com>`.
pub fn check_mailbox(s: &str) -> Result<(), String> {
    s.parse::<Mailbox>().map(|_| ()).map_err(|e| format!("{s:?} is not an address like `Name <user@example.com>`: {e}"))
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Never printed (`Debug` shows `[REDACTED]`).
    pub password: Option<SecretString>,
    /// The From address, optionally with a display name: `Mesa de ayuda <ayuda@example.com>`.
    pub from: String,
    pub timeout: Duration,
    /// A PEM file of extra trusted root certificates (a private CA), on top
    /// of the WebPKI roots; `None`: those roots only.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("invalid From address {0:?}: {1}")]
    From(String, String),
    #[error("cannot set up TLS for {0}: {1}")]
    Tls(String, String),
    #[error("CA file {0}: {1}")]
    CaFile(String, String),
}

/// Reads a PEM file of root certificates; it must hold at least one.
pub fn read_ca_file(path: &std::path::Path) -> Result<Certificate, SmtpConfigError> {
    let bad = |m: String| SmtpConfigError::CaFile(path.display().to_string(), m);
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("no PEM certificate in it".into()));
    }
    Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))
}

/// Must be created and dropped inside a tokio runtime (the connection pool
/// runs on it).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Domain part used in generated Message-IDs.
    id_domain: String,
    /// Texts no error may carry: the password in the forms it is sent in.
    secrets: Vec<String>,
}

impl SmtpMailer {
    pub fn new(s: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let from: Mailbox = s.from.parse().map_err(|e| SmtpConfigError::From(s.from.clone(), format!("{e}")))?;
        let tls = |host: &str| -> Result<TlsParameters, SmtpConfigError> {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(path) = &s.ca_file {
                params = params.add_root_certificate(read_ca_file(path)?);
            }
            params.build().map_err(|e| SmtpConfigError::Tls(host.to_string(), e.to_string()))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host);
        builder = match s.security {
            Security::None => builder,
            Security::StartTls => builder.tls(Tls::Required(tls(&s.host)?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls(&s.host)?)),
        }
        .port(s.port)
        .timeout(Some(s.timeout))
        .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)));
        let mut secrets = Vec::new();
        if let (Some(user), Some(pass)) = (&s.username, s.password.as_ref().map(ExposeSecret::expose_secret)) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.to_string()));
            if !pass.is_empty() {
                // As given, and as AUTH LOGIN and AUTH PLAIN send it.
                secrets.push(pass.to_string());
                secrets.push(BASE64.encode(pass));
                secrets.push(BASE64.encode(format!("\0{user}\0{pass}")));
            }
        }
        let id_domain = from.email.domain().to_string();
        Ok(Self { transport: builder.build(), from, id_domain, secrets })
    }

    /// `text` without the password (a server may repeat what it was sent).
    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "[password]");
        }
        text
    }

    fn build(&self, mail: &OutgoingMail, message_id: &str) -> Result<Message, NotifyError> {
        let to: Mailbox =
            mail.to.parse().map_err(|e| NotifyError::Permanent(format!("invalid recipient {:?}: {e}", mail.to)))?;
        let words = templates::render(&mail.content);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(words.subject)
            .header(MessageId::from(format!("<{message_id}>")));
        for cc in &mail.cc {
            let cc: Mailbox =
                cc.parse().map_err(|e| NotifyError::Permanent(format!("invalid Cc recipient {cc:?}: {e}")))?;
            builder = builder.cc(cc);
        }
        let mut references: Vec<&String> = mail.references.iter().collect();
        if let Some(parent) = &mail.in_reply_to {
            builder = builder.in_reply_to(format!("<{parent}>"));
            if !references.contains(&parent) {
                references.push(parent);
            }
        }
        let references: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        if !references.is_empty() {
            builder = builder.references(references.join(" "));
        }
        let body = match words.html {
            Some(html) => {
                MultiPart::alternative().singlepart(SinglePart::plain(words.text)).singlepart(SinglePart::html(html))
            }
            None => MultiPart::mixed().singlepart(SinglePart::plain(words.text)),
        };
        let mut message = builder.multipart(body).map_err(|e| NotifyError::Permanent(format!("cannot build: {e}")))?;
        // lettre writes an address list or References on one line, however
        // long; SMTP servers refuse lines over 998 characters ("Line too
        // long"). Folded here (the envelope is already taken from them).
        let cc: Vec<String> = mail.cc.iter().map(|c| c.trim().to_string()).collect();
        for folded in [fold("Cc", &cc, ", "), fold("References", &references, " ")].into_iter().flatten() {
            message.headers_mut().insert_raw(folded);
        }
        for (name, value) in &mail.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|e| NotifyError::Permanent(format!("bad header name {name:?}: {e}")))?;
            message.headers_mut().insert_raw(HeaderValue::new(name, value.clone()));
        }
        Ok(message)
    }
}

/// The longest header line written (RFC 5322's recommended 78).
const LINE: usize = 78;

/// A header listing `items` joined by `separator`, folded (CRLF and a blank)
/// before an item that would pass [`LINE`]; `None` when there is nothing to
/// list or an item is not plain printable ASCII (lettre's own encoding is
/// kept for those).
fn fold(name: &str, items: &[String], separator: &str) -> Option<HeaderValue> {
    if items.is_empty()
        || !items.iter().all(|i| !i.is_empty() && i.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' '))
    {
        return None;
    }
    let mut folded = String::new();
    let mut line = name.len() + 2;
    for (n, item) in items.iter().enumerate() {
        let sep = if n == 0 { "" } else { separator };
        if n > 0 && line + sep.len() + item.len() > LINE {
            folded.push_str(sep.trim_end());
            folded.push_str("\r\n ");
            line = 1;
        } else {
            folded.push_str(sep);
            line += sep.len();
        }
        folded.push_str(item);
        line += item.len();
    }
    let header = HeaderName::new_from_ascii(name.to_string()).ok()?;
    Some(HeaderValue::dangerous_new_pre_encoded(header, items.join(separator), folded))
}

impl MailNotifier for SmtpMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<String, NotifyError> {
        let message_id = mail
            .message_id
            .clone()
            .unwrap_or_else(|| format!("{}@{}", helpdesk_domain::crypto::random_token(24), self.id_domain));
        let message = self.build(&mail, &message_id)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(message_id),
            Err(e) if e.is_permanent() => Err(NotifyError::Permanent(self.scrub(e.to_string()))),
            Err(e) => Err(NotifyError::Temporary(self.scrub(e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use helpdesk_domain::model::MailContent;

    use super::*;

    fn mailer() -> SmtpMailer {
        mailer_on(1)
    }

    fn settings_on(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
            username: None,
            password: None,
            from: "Mesa de ayuda <ayuda@helpdesk.test>".into(),
            timeout: Duration::from_secs(2),
            ca_file: None,
        }
    }

    fn mailer_on(port: u16) -> SmtpMailer {
        SmtpMailer::new(&settings_on(port)).unwrap()
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: "cliente@ejemplo.test".into(),
            content: MailContent::Plain {
                subject: "Asunto con tildes: contraseña".into(),
                text: "Hola".into(),
                html: Some("<p>Hola</p>".into()),
            },
            message_id: Some("abc@helpdesk.test".into()),
            in_reply_to: Some("padre@otro.test".into()),
            references: vec![],
            cc: vec![],
            headers: vec![("Auto-Submitted".into(), "auto-replied".into())],
        }
    }

    // The pooled transport lives on a tokio runtime, hence `tokio::test`.
    #[tokio::test]
    async fn messages_are_multipart_with_the_headers_asked_for() {
        let raw = String::from_utf8(mailer().build(&mail(), "abc@helpdesk.test").unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <abc@helpdesk.test>"), "{raw}");
        assert!(raw.contains("In-Reply-To: <padre@otro.test>"));
        assert!(raw.contains("Auto-Submitted: auto-replied"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/html"));
    }

    /// RFC 5322 limits a line to 998 characters (78 recommended): long
    /// address lists and References are folded, whatever their length.
    #[tokio::test]
    async fn long_address_lists_and_references_are_folded() {
        let cc: Vec<String> = (0..60).map(|i| format!("participante.numero{i}@empresa-cliente.test")).collect();
        let references: Vec<String> =
            (0..60).map(|i| format!("ticket7.r{i:020}.0123456789abcdef@helpdesk.test")).collect();
        let m = OutgoingMail { cc: cc.clone(), references: references.clone(), ..mail() };
        let raw = String::from_utf8(mailer().build(&m, "abc@helpdesk.test").unwrap().formatted()).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "{} characters: {line}", line.len());
        }
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        let got: Vec<&str> = parsed.cc().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(got, cc.iter().map(String::as_str).collect::<Vec<_>>(), "every address, unfolded");
        let got: Vec<String> = parsed.references().as_text_list().unwrap().iter().map(|r| r.to_string()).collect();
        let mut expected = references.clone();
        expected.push("padre@otro.test".into());
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_bad_recipient_is_permanent() {
        let m = OutgoingMail { to: "no es correo".into(), ..mail() };
        assert!(matches!(mailer().build(&m, "x@y"), Err(NotifyError::Permanent(_))));
    }

    #[tokio::test]
    async fn a_refused_connection_is_temporary() {
        // Bound but not listening: connections are refused, and nothing
        // else can take the port while the test holds it.
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let err = mailer_on(closed.local_addr().unwrap().port()).send(mail()).await.unwrap_err();
        assert!(matches!(err, NotifyError::Temporary(_)), "{err:?}");
    }

    /// A server that refuses AUTH repeating what it was sent, decoded too:
    /// the error text must not carry the password in any form.
    #[tokio::test]
    async fn no_error_text_carries_the_password() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = if line.starts_with("EHLO") {
                    "250-fake\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
                } else if let Some(b64) = line.strip_prefix("AUTH PLAIN ") {
                    let decoded = BASE64.decode(b64).unwrap_or_default();
                    let decoded = String::from_utf8_lossy(&decoded).replace('\0', " ");
                    format!("535 5.7.8 refused {line} ({decoded})\r\n")
                } else {
                    "221 bye\r\n".to_string()
                };
                write.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let mailer = SmtpMailer::new(&SmtpSettings {
            username: Some("ayuda".into()),
            password: Some("Clave-Smtp-4471".into()),
            ..settings_on(port)
        })
        .unwrap();
        let err = mailer.send(mail()).await.unwrap_err();
        let text = match &err {
            NotifyError::Permanent(t) | NotifyError::Temporary(t) => t.clone(),
        };
        assert!(text.contains("535") && text.contains("[password]"), "the server's words are kept: {text}");
        for secret in ["Clave-Smtp-4471", &BASE64.encode("Clave-Smtp-4471"), &BASE64.encode("\0ayuda\0Clave-Smtp-4471")]
        {
            assert!(!text.contains(secret), "{secret:?} in {text:?}");
        }
    }

    #[test]
    fn security_names() {
        assert_eq!(Security::parse("STARTTLS"), Some(Security::StartTls));
        assert_eq!(Security::parse("none"), Some(Security::None));
        assert_eq!(Security::parse("ssl3"), None);
    }
}
