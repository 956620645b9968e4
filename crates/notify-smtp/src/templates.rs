//! Every text the helpdesk e-mails, in one place: the subject, plain text
//! and HTML of each [`MailContent`] the domain asks for. Values are escaped
//! here for HTML; [`MailContent::Plain`] is sent as given.

use helpdesk_domain::model::{MailContent, SlaTarget};

/// The words of one e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    /// `None`: plain text only.
    pub html: Option<String>,
}

/// The subject and body of `content`.
pub fn render(content: &MailContent) -> RenderedMail {
    match content {
        MailContent::TicketAcknowledgement { number, subject } => RenderedMail {
            subject: format!("{} {subject}", ticket_tag(*number)),
            text: format!(
                "Hemos recibido su mensaje y abierto el ticket #{number}.\n\n\
                 Para agregar información, responda a este correo conservando \"{tag}\" en el asunto.\n\n\
                 Este es un mensaje automático.",
                tag = ticket_tag(*number)
            ),
            html: None,
        },
        MailContent::AssigneeNotice { opened_ticket, number, subject, from, date, excerpt } => {
            let what = if *opened_ticket { "Nuevo ticket asignado" } else { "Nuevo mensaje en su ticket" };
            RenderedMail {
                subject: format!("{} {what}: {subject}", ticket_tag(*number)),
                text: format!(
                    "{what} #{number}: {subject}\nDe: {from}\nFecha: {date}\n\n{excerpt}\n",
                    date = date.format("%Y-%m-%d %H:%M:%S")
                ),
                html: None,
            }
        }
        MailContent::PasswordReset { name, link, valid_minutes } => RenderedMail {
            subject: "Restablecer su contraseña".into(),
            text: format!(
                "Hola {name}:\n\nRecibimos una solicitud para restablecer su contraseña.\n\
                 Abra este enlace en los próximos {valid_minutes} minutos:\n\n{link}\n\n\
                 Si usted no la pidió, ignore este mensaje; su contraseña no cambia.\n"
            ),
            html: Some(format!(
                "<p>Hola {name}:</p><p>Recibimos una solicitud para restablecer su contraseña. \
                 Abra este enlace en los próximos {valid_minutes} minutos:</p>\
                 <p><a href=\"{link}\">Restablecer la contraseña</a></p>\
                 <p>Si usted no la pidió, ignore este mensaje; su contraseña no cambia.</p>",
                name = html_escape(name),
                link = html_escape(link)
            )),
        },
        MailContent::OperatorReply { number, subject, text, html } => RenderedMail {
            subject: format!("{} {subject}", ticket_tag(*number)),
            text: text.clone(),
            html: html.clone(),
        },
        MailContent::TicketAssigned { number, subject, requester } => RenderedMail {
            subject: format!("{} Ticket asignado: {subject}", ticket_tag(*number)),
            text: format!("Se le asignó el ticket #{number}: {subject}\nSolicitante: {requester}\n"),
            html: None,
        },
        MailContent::SlaBreach { number, subject, target, due, assignee } => {
            let target = target_words(*target);
            RenderedMail {
                subject: format!("{} Plazo vencido ({target}): {subject}", ticket_tag(*number)),
                text: format!(
                    "El ticket #{number} no cumplió su plazo de {target}.\nAsunto: {subject}\n\
                     Vencía: {due}\nAsignado a: {holder}\n",
                    holder = assignee.as_deref().unwrap_or("sin asignar")
                ),
                html: None,
            }
        }
        MailContent::DeliveryFailed { number, subject, recipient, reason } => RenderedMail {
            subject: format!("{} Respuesta no entregada: {subject}", ticket_tag(*number)),
            text: format!(
                "No se pudo entregar la respuesta del ticket #{number} a {recipient}.\nAsunto: {subject}\n\
                 Motivo: {reason}\nEl cliente no la recibió: revise la dirección o contáctelo por otro medio.\n"
            ),
            html: None,
        },
        MailContent::Plain { subject, text, html } => {
            RenderedMail { subject: subject.clone(), text: text.clone(), html: html.clone() }
        }
    }
}

/// The target a service-level text is about, as its readers name it.
fn target_words(target: SlaTarget) -> &'static str {
    match target {
        SlaTarget::FirstResponse => "primera respuesta",
        SlaTarget::Resolution => "resolución",
    }
}

/// The tag that names a ticket in a subject; a reply that keeps it joins
/// the ticket (the domain's `subject_ticket_number` reads it back).
fn ticket_tag(number: i64) -> String {
    format!("[Ticket #{number}]")
}

/// For text and attribute values (double-quoted).
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use helpdesk_domain::model::Timestamp;
    use helpdesk_domain::services::subject_ticket_number;

    use super::*;

    const SUBJECT: &str = "No funciona <la> impresora & \"ya\"";

    fn assignee(opened_ticket: bool) -> RenderedMail {
        render(&MailContent::AssigneeNotice {
            opened_ticket,
            number: 132,
            subject: SUBJECT.into(),
            from: "Cliente <c@x.test>".into(),
            date: Timestamp::parse_from_str("2025-10-03 14:05:09", "%Y-%m-%d %H:%M:%S").unwrap(),
            excerpt: "Línea 1\nLínea 2".into(),
        })
    }

    // The expected texts are what the domain wrote before the texts moved
    // here, byte for byte.
    #[test]
    fn the_acknowledgement() {
        let m = render(&MailContent::TicketAcknowledgement { number: 132, subject: SUBJECT.into() });
        assert_eq!(m.subject, "[Ticket #132] No funciona <la> impresora & \"ya\"");
        assert_eq!(
            m.text,
            "Hemos recibido su mensaje y abierto el ticket #132.\n\nPara agregar información, responda a este correo \
             conservando \"[Ticket #132]\" en el asunto.\n\nEste es un mensaje automático."
        );
        assert_eq!(m.html, None);
        assert_eq!(subject_ticket_number(&format!("Re: {}", m.subject)), Some(132), "a reply joins the ticket");
    }

    #[test]
    fn the_assignee_notices() {
        let opened = assignee(true);
        assert_eq!(opened.subject, "[Ticket #132] Nuevo ticket asignado: No funciona <la> impresora & \"ya\"");
        assert_eq!(
            opened.text,
            "Nuevo ticket asignado #132: No funciona <la> impresora & \"ya\"\nDe: Cliente <c@x.test>\n\
             Fecha: 2025-10-03 14:05:09\n\nLínea 1\nLínea 2\n"
        );
        assert_eq!(opened.html, None);
        let joined = assignee(false);
        assert_eq!(joined.subject, "[Ticket #132] Nuevo mensaje en su ticket: No funciona <la> impresora & \"ya\"");
        assert_eq!(
            joined.text,
            "Nuevo mensaje en su ticket #132: No funciona <la> impresora & \"ya\"\nDe: Cliente <c@x.test>\n\
             Fecha: 2025-10-03 14:05:09\n\nLínea 1\nLínea 2\n"
        );
        assert_eq!(subject_ticket_number(&joined.subject), Some(132));
    }

    #[test]
    fn the_password_reset_escapes_its_html() {
        let m = render(&MailContent::PasswordReset {
            name: "Ana & <Mora>".into(),
            link: "https://x.test/r?id=5&token=a\"b".into(),
            valid_minutes: 60,
        });
        assert_eq!(m.subject, "Restablecer su contraseña");
        assert_eq!(
            m.text,
            "Hola Ana & <Mora>:\n\nRecibimos una solicitud para restablecer su contraseña.\nAbra este enlace en los \
             próximos 60 minutos:\n\nhttps://x.test/r?id=5&token=a\"b\n\nSi usted no la pidió, ignore este mensaje; \
             su contraseña no cambia.\n"
        );
        assert_eq!(
            m.html.as_deref(),
            Some(
                "<p>Hola Ana &amp; &lt;Mora&gt;:</p><p>Recibimos una solicitud para restablecer su contraseña. Abra \
                 este enlace en los próximos 60 minutos:</p><p><a href=\"https://x.test/r?id=5&amp;token=a&quot;b\">\
                 Restablecer la contraseña</a></p><p>Si usted no la pidió, ignore este mensaje; su contraseña no \
                 cambia.</p>"
            )
        );
        // The link alone on its line, as readers of the plain text find it.
        assert!(m.text.lines().any(|l| l == "https://x.test/r?id=5&token=a\"b"));
    }

    #[test]
    fn plain_content_is_sent_as_given() {
        let content = MailContent::Plain {
            subject: "Re: <x>".into(),
            text: "a & b".into(),
            html: Some("<p>a &amp; b</p>".into()),
        };
        assert_eq!(
            render(&content),
            RenderedMail { subject: "Re: <x>".into(), text: "a & b".into(), html: Some("<p>a &amp; b</p>".into()) }
        );
    }

    #[test]
    fn an_operator_reply_keeps_its_words_and_tags_the_subject() {
        let content = MailContent::OperatorReply {
            number: 132,
            subject: "Re: No funciona".into(),
            text: "Hola <Ana> & cía".into(),
            html: None,
        };
        let words = render(&content);
        assert_eq!(words.subject, "[Ticket #132] Re: No funciona");
        assert_eq!(words.text, "Hola <Ana> & cía");
        assert_eq!(words.html, None);
        assert_eq!(subject_ticket_number(&format!("Re: {}", words.subject)), Some(132));
    }

    #[test]
    fn an_assignment_names_the_ticket_and_its_requester() {
        let content = MailContent::TicketAssigned {
            number: 7,
            subject: "Impresora".into(),
            requester: "ana@cliente.test".into(),
        };
        assert_eq!(
            render(&content),
            RenderedMail {
                subject: "[Ticket #7] Ticket asignado: Impresora".into(),
                text: "Se le asignó el ticket #7: Impresora\nSolicitante: ana@cliente.test\n".into(),
                html: None,
            }
        );
    }

    #[test]
    fn a_missed_service_level_names_the_target_the_due_time_and_the_holder() {
        let breach = |target, assignee: Option<&str>| {
            render(&MailContent::SlaBreach {
                number: 132,
                subject: SUBJECT.into(),
                target,
                due: "2026-12-01 09:00 America/Costa_Rica".into(),
                assignee: assignee.map(Into::into),
            })
        };
        let first = breach(SlaTarget::FirstResponse, Some("Ana Mora"));
        assert_eq!(
            first.subject,
            "[Ticket #132] Plazo vencido (primera respuesta): No funciona <la> impresora & \"ya\""
        );
        assert_eq!(
            first.text,
            "El ticket #132 no cumplió su plazo de primera respuesta.\nAsunto: No funciona <la> impresora & \"ya\"\n\
             Vencía: 2026-12-01 09:00 America/Costa_Rica\nAsignado a: Ana Mora\n"
        );
        assert_eq!(first.html, None);
        assert_eq!(subject_ticket_number(&first.subject), Some(132));
        let nobody = breach(SlaTarget::Resolution, None);
        assert_eq!(nobody.subject, "[Ticket #132] Plazo vencido (resolución): No funciona <la> impresora & \"ya\"");
        assert_eq!(
            nobody.text,
            "El ticket #132 no cumplió su plazo de resolución.\nAsunto: No funciona <la> impresora & \"ya\"\n\
             Vencía: 2026-12-01 09:00 America/Costa_Rica\nAsignado a: sin asignar\n"
        );
    }

    #[test]
    fn a_reply_not_delivered_names_the_recipient_and_why() {
        let m = render(&MailContent::DeliveryFailed {
            number: 132,
            subject: SUBJECT.into(),
            recipient: "cliente@ejemplo.test".into(),
            reason: "550 no such user".into(),
        });
        assert_eq!(m.subject, "[Ticket #132] Respuesta no entregada: No funciona <la> impresora & \"ya\"");
        assert!(m.text.contains("a cliente@ejemplo.test") && m.text.contains("Motivo: 550 no such user"), "{}", m.text);
        assert_eq!(subject_ticket_number(&m.subject), Some(132));
    }
}
