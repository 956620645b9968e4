//! RFC 5322 / MIME decoding with mail-parser.

use std::collections::BTreeMap;

use helpdesk_domain::model::IncomingMail;
use helpdesk_domain::model::Timestamp;
use helpdesk_domain::ports::{DecodedAttachment, DecodedMail, MessageDecoder};
use mail_parser::{Address, MessageParser, MimeHeaders};

/// Subject of a mail that has none.
const NO_SUBJECT: &str = "(sin asunto)";

/// Decodes with mail-parser: encoded words in headers, every charset it
/// knows (UTF-8, ISO-8859-*, Windows-125*, KOI8, Shift_JIS, GB18030, ...),
/// quoted-printable and base64 bodies, nested multiparts.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailParserDecoder;

impl MessageDecoder for MailParserDecoder {
    fn decode(&self, raw: &[u8]) -> Result<DecodedMail, String> {
        let msg = MessageParser::default().parse(raw).ok_or("not an RFC 5322 message")?;
        let from = msg.from().and_then(first).ok_or("no sender address (From) to open a ticket for")?;
        let to = msg.to().map(list).filter(|t| !t.is_empty()).ok_or("no recipient address (To)")?;
        let date =
            msg.date().and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0)).map(|d| d.naive_utc());
        let html = msg
            .html_part(0)
            .filter(|p| p.is_text_html())
            .and_then(|_| msg.body_html(0))
            .map(|h| h.into_owned())
            .unwrap_or_default();
        let mut attachments = Vec::new();
        for (i, part) in msg.attachments().enumerate() {
            let mime_type = part
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_lowercase();
            let name = part
                .attachment_name()
                .map(str::to_string)
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("adjunto-{}.{}", i + 1, extension(&mime_type)));
            attachments.push(DecodedAttachment { name, mime_type, content: part.contents().to_vec() });
        }
        let mail = IncomingMail {
            system: String::new(),
            subject: msg.subject().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(NO_SUBJECT).to_string(),
            from,
            to,
            cc: msg.cc().map(list).filter(|l| !l.is_empty()),
            bcc: msg.bcc().map(list).filter(|l| !l.is_empty()),
            reply_to: msg.reply_to().and_then(first),
            body: msg.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
            html,
            date: date.unwrap_or(Timestamp::MIN),
            headers: headers(msg.headers_raw()),
            attachments: Vec::new(),
            received_by: None,
        };
        Ok(DecodedMail { mail, attachments, dated: date.is_some() })
    }
}

/// `Name <addr>` or `addr`, as `correo/save` clients send them.
fn format_addr(a: &mail_parser::Addr<'_>) -> Option<String> {
    let address = a.address()?.trim();
    if address.is_empty() {
        return None;
    }
    Some(match a.name().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("{} <{address}>", name.replace(['<', '>', ','], " ").trim()),
        None => address.to_string(),
    })
}

fn first(a: &Address<'_>) -> Option<String> {
    a.iter().find_map(format_addr)
}

fn list(a: &Address<'_>) -> String {
    a.iter().filter_map(format_addr).collect::<Vec<_>>().join(", ")
}

/// Raw header values, unfolded; a repeated header's values joined by new lines.
fn headers<'a>(raw: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in raw {
        let value = value.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        out.entry(name.to_string()).and_modify(|v| (*v).push_str(&format!("\n{value}"))).or_insert(value);
    }
    out
}

fn extension(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "message/rfc822" => "eml",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn decode(name: &str) -> Result<DecodedMail, String> {
        MailParserDecoder.decode(&fixture(name))
    }

    #[test]
    fn multipart_with_encoded_words_html_attachment_and_inline_image() {
        let d = decode("multipart.eml").unwrap();
        let m = &d.mail;
        assert_eq!(m.subject, "No funciona la impresión");
        assert_eq!(m.from, "María Pérez <maria@cliente.test>");
        assert_eq!(m.to, "Soporte <soporte@helpdesk.test>");
        assert_eq!(m.cc.as_deref(), Some("jefe@cliente.test"));
        assert_eq!(m.bcc, None);
        assert!(m.body.contains("no imprime. Adjunto el informe y una captura de pantalla."), "{}", m.body);
        assert!(m.html.contains("<b>segundo piso</b>"), "{}", m.html);
        assert!(d.dated);
        assert_eq!(m.date.to_string(), "2026-11-24 16:15:00", "Date converted to UTC");
        assert_eq!(m.headers.get("Message-ID").map(String::as_str), Some("<multipart-1@cliente.test>"));
        let names: Vec<_> = d.attachments.iter().map(|a| (a.name.as_str(), a.mime_type.as_str())).collect();
        assert_eq!(names, [("captura.png", "image/png"), ("informe técnico.pdf", "application/pdf")]);
        assert!(d.attachments[0].content.starts_with(b"\x89PNG"));
        assert_eq!(d.attachments[1].content, b"%PDF-1.4\n% informe de prueba\n%%EOF\n");
    }

    #[test]
    fn latin1_and_windows_1252_become_utf8() {
        let m = decode("latin1.eml").unwrap().mail;
        assert_eq!(m.subject, "Contraseña caducada ¿pueden ayudar?");
        assert_eq!(m.from, "José Muñoz <jose@cliente.test>");
        assert_eq!(m.body.trim(), "No puedo entrar: la contraseña caducó “ayer” y el acceso está bloqueado €.");
        assert_eq!(m.html, "", "a plain-text mail has no HTML");
    }

    #[test]
    fn koi8_r_becomes_utf8() {
        let m = decode("koi8.eml").unwrap().mail;
        assert_eq!(m.subject, "Почта");
        assert_eq!(m.body.trim(), "Добрый день, не работает почта.");
    }

    #[test]
    fn reply_and_auto_reply_keep_the_headers_ingestion_reads() {
        let r = decode("reply.eml").unwrap().mail;
        assert_eq!(r.subject, "Re: No funciona la impresión");
        assert_eq!(r.headers.get("In-Reply-To").map(String::as_str), Some("<multipart-1@cliente.test>"));
        let a = decode("autoreply.eml").unwrap().mail;
        assert_eq!(a.headers.get("Auto-Submitted").map(String::as_str), Some("auto-replied"));
    }

    #[test]
    fn a_mail_without_date_or_message_id_says_so() {
        let d = decode("bare.eml").unwrap();
        assert!(!d.dated);
        assert!(!d.mail.headers.contains_key("Message-ID"));
        assert_eq!(d.mail.body.trim(), "Un correo sin Message-ID y sin Date.");
    }

    #[test]
    fn mail_without_sender_or_recipient_is_refused_with_the_reason() {
        assert_eq!(decode("malformed.eml").unwrap_err(), "not an RFC 5322 message");
        assert_eq!(MailParserDecoder.decode(b"").unwrap_err(), "not an RFC 5322 message");
        let no_from = b"To: a@cliente.test\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(MailParserDecoder.decode(no_from).unwrap_err(), "no sender address (From) to open a ticket for");
        let no_to = b"From: a@cliente.test\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(MailParserDecoder.decode(no_to).unwrap_err(), "no recipient address (To)");
    }

    #[test]
    fn folded_and_repeated_headers() {
        let raw = b"Received: from a\r\n\tby b\r\nReceived: from c\r\nFrom: x@y.test\r\nTo: z@y.test\r\n\
                    Subject: =?utf-8?q?largo?=\r\n =?utf-8?q?_y_plegado?=\r\n\r\nbody\r\n";
        let m = MailParserDecoder.decode(raw).unwrap().mail;
        assert_eq!(m.headers.get("Received").map(String::as_str), Some("from a by b\nfrom c"));
        assert_eq!(m.subject, "largo y plegado");
    }
}
