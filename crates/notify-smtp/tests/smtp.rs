//! The SMTP adapter against a real SMTP server on loopback.

use std::time::Duration;

use helpdesk_domain::model::{MailContent, OutgoingMail};
use helpdesk_domain::ports::{MailNotifier, NotifyError};
use helpdesk_notify_smtp::testing::{ClosedPort, SinkTls, SmtpSink, TestCa, parse};
use helpdesk_notify_smtp::{Security, SmtpMailer, SmtpSettings, templates};

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        username: None,
        password: None,
        from: "Mesa de ayuda <ayuda@helpdesk.test>".into(),
        timeout: Duration::from_secs(5),
        ca_file: None,
    }
}

#[tokio::test]
#[ignore = "needs python3 aiosmtpd; .ci/run installs it and runs this"]
async fn a_message_arrives_whole() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&settings(sink.port)).unwrap();
    let id = mailer
        .send(OutgoingMail {
            to: "cliente@ejemplo.test".into(),
            content: MailContent::Plain {
                subject: "[Ticket #12] Contraseña y acentuación".into(),
                text: "Línea con ñ y un enlace https://ayuda.example.test/r?id=1&token=abc".into(),
                html: Some("<p>Línea con <b>ñ</b></p>".into()),
            },
            message_id: None,
            in_reply_to: Some("original@cliente.test".into()),
            references: vec![],
            cc: vec![],
            headers: vec![("Auto-Submitted".into(), "auto-replied".into())],
        })
        .await
        .unwrap();
    assert!(id.ends_with("@helpdesk.test"), "{id}");
    let raw = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(raw.len(), 1);
    let m = parse(&raw[0]);
    assert_eq!(m.subject(), Some("[Ticket #12] Contraseña y acentuación"));
    assert_eq!(m.message_id(), Some(id.as_str()));
    assert_eq!(m.from().unwrap().first().unwrap().address(), Some("ayuda@helpdesk.test"));
    assert_eq!(m.to().unwrap().first().unwrap().address(), Some("cliente@ejemplo.test"));
    assert_eq!(m.in_reply_to().as_text(), Some("original@cliente.test"));
    assert_eq!(m.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    assert_eq!(
        m.body_text(0).as_deref().map(str::trim),
        Some("Línea con ñ y un enlace https://ayuda.example.test/r?id=1&token=abc")
    );
    assert!(m.body_html(0).unwrap().contains("<b>ñ</b>"));
}

/// Our contents arrive in the words of the templates, as sent.
#[tokio::test]
#[ignore = "needs python3 aiosmtpd; .ci/run installs it and runs this"]
async fn a_templated_message_arrives_in_its_words() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&settings(sink.port)).unwrap();
    let content = MailContent::PasswordReset {
        name: "Ana & <Mora>".into(),
        link: "https://ayuda.example.test/r?id=1&token=abc".into(),
        valid_minutes: 60,
    };
    let words = templates::render(&content);
    let mail = OutgoingMail {
        to: "ana@ejemplo.test".into(),
        content,
        message_id: None,
        in_reply_to: None,
        references: vec![],
        headers: vec![],
        cc: vec![],
    };
    mailer.send(mail).await.unwrap();
    let raw = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(raw.len(), 1);
    let m = parse(&raw[0]);
    assert_eq!(m.subject(), Some("Restablecer su contraseña"));
    assert_eq!(m.body_text(0).as_deref(), Some(words.text.as_str()));
    assert_eq!(m.body_html(0).as_deref(), words.html.as_deref());
    assert!(m.body_html(0).unwrap().contains("Hola Ana &amp; &lt;Mora&gt;:"));
}

#[tokio::test]
#[ignore = "needs python3 aiosmtpd; .ci/run installs it and runs this"]
async fn a_stopped_server_is_a_temporary_failure_and_a_restarted_one_works() {
    // No server on the port (it refuses connections), which stays ours.
    let down = ClosedPort::new();
    let mailer = SmtpMailer::new(&settings(down.port)).unwrap();
    let mail = OutgoingMail {
        to: "cliente@ejemplo.test".into(),
        content: MailContent::Plain { subject: "hola".into(), text: "hola".into(), html: None },
        message_id: None,
        in_reply_to: None,
        references: vec![],
        cc: vec![],
        headers: vec![],
    };
    assert!(matches!(mailer.send(mail.clone()).await, Err(NotifyError::Temporary(_))));
    // Restarted on that same port: the same mailer gets through.
    let sink = SmtpSink::start_on(down);
    mailer.send(mail).await.unwrap();
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await.len(), 1);
}

fn hello() -> OutgoingMail {
    OutgoingMail {
        to: "cliente@ejemplo.test".into(),
        content: MailContent::Plain { subject: "por TLS".into(), text: "hola".into(), html: None },
        message_id: None,
        in_reply_to: None,
        references: vec![],
        cc: vec![],
        headers: vec![],
    }
}

fn error_text(e: NotifyError) -> String {
    match e {
        NotifyError::Temporary(t) | NotifyError::Permanent(t) => t,
    }
}

/// STARTTLS and AUTH against a server that refuses everything but EHLO
/// before STARTTLS, and AUTH in clear: the mail arrives only with TLS, the
/// test CA trusted (`ca_file`) and the right password.
#[tokio::test]
#[ignore = "needs python3 aiosmtpd and openssl; .ci/run installs aiosmtpd and runs this"]
async fn starttls_with_a_login_and_a_private_ca() {
    let ca = TestCa::new();
    let sink = SmtpSink::start_tls(SinkTls::StartTls, &ca, ("ayuda", "Clave-Smtp-Tls-1"));
    let tls = SmtpSettings {
        security: Security::StartTls,
        username: Some("ayuda".into()),
        password: Some("Clave-Smtp-Tls-1".into()),
        ca_file: Some(ca.ca_pem.clone()),
        ..settings(sink.port)
    };
    SmtpMailer::new(&tls).unwrap().send(hello()).await.unwrap();
    let raw = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(parse(&raw[0]).subject(), Some("por TLS"));

    // Without the CA the server's certificate is not trusted: nothing sent.
    let err = SmtpMailer::new(&SmtpSettings { ca_file: None, ..tls.clone() }).unwrap().send(hello()).await;
    let text = error_text(err.unwrap_err());
    assert!(text.to_lowercase().contains("certificate") || text.contains("tls"), "{text}");
    // In clear, the server refuses (it requires STARTTLS first).
    let err = SmtpMailer::new(&SmtpSettings { security: Security::None, ..tls.clone() }).unwrap().send(hello()).await;
    assert!(err.is_err(), "plaintext must be refused");
    // A wrong password is refused, and does not appear in the error.
    let wrong = SmtpSettings { password: Some("Otra-Clave-77".into()), ..tls.clone() };
    let text = error_text(SmtpMailer::new(&wrong).unwrap().send(hello()).await.unwrap_err());
    assert!(text.contains("535") && !text.contains("Otra-Clave-77"), "{text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1, "only the mail sent over TLS with the login arrived");
}

/// Implicit TLS (SMTPS): TLS from the first byte, the test CA trusted.
#[tokio::test]
#[ignore = "needs python3 aiosmtpd and openssl; .ci/run installs aiosmtpd and runs this"]
async fn implicit_tls_with_a_login_and_a_private_ca() {
    let ca = TestCa::new();
    let sink = SmtpSink::start_tls(SinkTls::Implicit, &ca, ("ayuda", "Clave-Smtps-2"));
    let tls = SmtpSettings {
        security: Security::Tls,
        username: Some("ayuda".into()),
        password: Some("Clave-Smtps-2".into()),
        ca_file: Some(ca.ca_pem.clone()),
        ..settings(sink.port)
    };
    SmtpMailer::new(&tls).unwrap().send(hello()).await.unwrap();
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    let err = SmtpMailer::new(&SmtpSettings { ca_file: None, ..tls }).unwrap().send(hello()).await;
    assert!(err.is_err(), "an untrusted certificate is refused");
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let bad = SmtpSettings { security: Security::StartTls, ca_file: Some("/etc/hostname".into()), ..settings(25) };
    assert!(SmtpMailer::new(&bad).is_err());
}
