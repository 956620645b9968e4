//! The IMAP adapter over TLS against Dovecot with TLS required: implicit
//! TLS on a port of its own (like 993) and STARTTLS, the server's
//! certificate from a test CA the adapter trusts through `ca_file`.

use std::time::Duration;

use helpdesk_domain::model::{MailAccount, Status};
use helpdesk_domain::ports::{MailboxSession, MailboxSource};
use helpdesk_mail_imap::testing::{Dovecot, TestCa};
use helpdesk_mail_imap::{ImapOptions, ImapSource};

const USER: &str = "buzon@helpdesk.test";
const PASSWORD: &str = "Clave-Imap-Tls-1";
const RAW: &[u8] = b"From: cliente@example.com\r\nTo: buzon@helpdesk.test\r\nSubject: por TLS\r\n\
Message-ID: <tls-1@example.com>\r\nDate: Fri, 10 Oct 2025 12:00:00 +0000\r\n\r\nHola.\r\n";

fn account(host: &str, port: u16) -> MailAccount {
    MailAccount {
        id: 1,
        host: host.into(),
        user: USER.into(),
        sealed_password: Vec::new(),
        port: port.to_string(),
        mailboxes: vec!["INBOX".into()],
        department_id: 1,
        status: Status::Active,
        send_acknowledgement: false,
    }
}

fn source(ca: Option<&TestCa>, implicit_tls_port: u16) -> ImapSource {
    ImapSource::new(ImapOptions {
        timeout: Duration::from_secs(10),
        allow_plaintext: false,
        ca_file: ca.map(|ca| ca.ca_pem.clone()),
        implicit_tls_ports: vec![implicit_tls_port],
    })
    .unwrap()
}

/// Logs in, reads the one mail, logs out.
async fn read_the_mail(source: &ImapSource, account: &MailAccount) {
    let mut session = match source.connect(account, PASSWORD).await {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", account.port),
    };
    let opened = session.open("INBOX", 0, false).await.unwrap();
    assert_eq!(opened.mail.len(), 1);
    let raw = session.fetch(opened.mail[0].uid).await.unwrap().expect("the mail");
    assert_eq!(raw, RAW);
    session.logout().await;
}

#[tokio::test]
#[ignore = "needs Debian's dovecot-imapd and openssl; .ci/run installs it and runs this"]
async fn implicit_tls_and_starttls_with_a_private_ca() {
    let ca = TestCa::new();
    let dovecot = Dovecot::start_tls(&[(USER, PASSWORD)], &ca);
    dovecot.append(USER, PASSWORD, "INBOX", RAW, false).await;
    let tls_port = dovecot.tls_port.expect("an implicit-TLS port");
    let trusting = source(Some(&ca), tls_port);

    // TLS from the first byte, and STARTTLS.
    read_the_mail(&trusting, &account(dovecot.host, tls_port)).await;
    read_the_mail(&trusting, &account(dovecot.host, dovecot.port)).await;

    // The server refuses a login in clear: had the adapter not used TLS,
    // the reads above would have failed.
    let tcp = tokio::net::TcpStream::connect((dovecot.host, dovecot.port)).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    assert!(client.login(USER, PASSWORD).await.is_err(), "plaintext LOGIN must be refused: {}", dovecot.log());

    // Without the CA, neither way trusts the server's certificate.
    let untrusting = source(None, tls_port);
    for port in [tls_port, dovecot.port] {
        let Err(e) = untrusting.connect(&account(dovecot.host, port), PASSWORD).await else {
            panic!("{port}: an untrusted certificate must be refused")
        };
        assert!(e.to_string().to_lowercase().contains("certificate"), "{port}: {e}");
    }
}
