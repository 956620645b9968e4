//! Every text the helpdesk posts to Synology Chat, in one place: the words
//! of each [`ChatContent`] the domain asks for. [`ChatContent::Plain`] is
//! sent as given.

use helpdesk_domain::model::{ChatContent, SlaTarget};

/// The text of `content`.
pub fn render(content: &ChatContent) -> String {
    match content {
        ChatContent::AssigneeNotice { opened_ticket, number, subject, from } => {
            let what = if *opened_ticket { "Nuevo ticket asignado" } else { "Nuevo mensaje en el ticket" };
            format!("{what} #{number}: {subject} (de {from})")
        }
        ChatContent::NewTicket { number, subject, from } => format!("Nuevo ticket #{number}: {subject} (de {from})"),
        ChatContent::TicketAssigned { number, subject } => format!("Se le asignó el ticket #{number}: {subject}"),
        ChatContent::SlaAlert { number, subject, target, due, breached } => {
            let target = match target {
                SlaTarget::FirstResponse => "primera respuesta",
                SlaTarget::Resolution => "resolución",
            };
            if *breached {
                format!("Ticket vencido #{number}: {subject} ({target}, venció {due})")
            } else {
                format!("Ticket por vencer #{number}: {subject} ({target}, vence {due})")
            }
        }
        ChatContent::LinkGreeting { name, login } => {
            format!("Hola {name}: su usuario de Synology Chat quedó vinculado a {login} en la mesa de ayuda.")
        }
        ChatContent::Plain { text } => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "No funciona <la> impresora & \"ya\"";
    const FROM: &str = "Cliente <c@x.test>";

    // The expected texts are what the domain wrote before the texts moved
    // here, byte for byte.
    #[test]
    fn the_assignee_notices() {
        let notice = |opened_ticket| ChatContent::AssigneeNotice {
            opened_ticket,
            number: 132,
            subject: SUBJECT.into(),
            from: FROM.into(),
        };
        assert_eq!(
            render(&notice(true)),
            "Nuevo ticket asignado #132: No funciona <la> impresora & \"ya\" (de Cliente <c@x.test>)"
        );
        assert_eq!(
            render(&notice(false)),
            "Nuevo mensaje en el ticket #132: No funciona <la> impresora & \"ya\" (de Cliente <c@x.test>)"
        );
    }

    #[test]
    fn the_department_channel_notice() {
        let content = ChatContent::NewTicket { number: 132, subject: SUBJECT.into(), from: FROM.into() };
        assert_eq!(render(&content), "Nuevo ticket #132: No funciona <la> impresora & \"ya\" (de Cliente <c@x.test>)");
    }

    #[test]
    fn the_bot_greeting() {
        let content = ChatContent::LinkGreeting { name: "Ana <Mora>".into(), login: "amora".into() };
        assert_eq!(
            render(&content),
            "Hola Ana <Mora>: su usuario de Synology Chat quedó vinculado a amora en la mesa de ayuda."
        );
    }

    #[test]
    fn plain_content_is_sent_as_given() {
        assert_eq!(render(&ChatContent::Plain { text: "Hola, ñandú <b>".into() }), "Hola, ñandú <b>");
    }

    #[test]
    fn an_assignment_names_the_ticket() {
        let content = ChatContent::TicketAssigned { number: 7, subject: "Impresora".into() };
        assert_eq!(render(&content), "Se le asignó el ticket #7: Impresora");
    }

    #[test]
    fn the_service_level_alerts() {
        let alert = |target, breached| ChatContent::SlaAlert {
            number: 132,
            subject: SUBJECT.into(),
            target,
            due: "2026-12-01 09:00 America/Costa_Rica".into(),
            breached,
        };
        assert_eq!(
            render(&alert(SlaTarget::FirstResponse, false)),
            "Ticket por vencer #132: No funciona <la> impresora & \"ya\" (primera respuesta, vence 2026-12-01 09:00 \
             America/Costa_Rica)"
        );
        assert_eq!(
            render(&alert(SlaTarget::Resolution, true)),
            "Ticket vencido #132: No funciona <la> impresora & \"ya\" (resolución, venció 2026-12-01 09:00 \
             America/Costa_Rica)"
        );
    }
}
