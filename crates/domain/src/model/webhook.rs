//! Outgoing webhooks: subscriptions (`webhook`), the events they announce
//! (`webhook_evento`) and one delivery per event and subscription
//! (`webhook_entrega`). See docs/decisions.md, "Outgoing webhooks".
//!
//! An event is written in the transaction of the change it announces (the
//! ticket stored, the reply, the update): its JSON body is rendered there,
//! once, and every attempt of every delivery sends those same bytes, under
//! the same event id.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Direction, NoticeStatus, Priority, Status, TicketStatus, Timestamp};

/// What happened to a ticket, as a subscriber names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEventKind {
    /// A mail opened a ticket.
    TicketCreated,
    /// The customer's mail was added to an existing ticket.
    CustomerReply,
    /// An operator's public reply (never an internal note).
    OperatorReply,
    /// The assignee changed (to someone or to nobody).
    Assigned,
    /// The status changed (an operator's change, or a customer's mail
    /// reopening a closed or pending ticket).
    StatusChanged,
    /// An operator's reply could not be delivered (given up for good).
    DeliveryFailed,
}

impl WebhookEventKind {
    pub const ALL: [WebhookEventKind; 6] = [
        WebhookEventKind::TicketCreated,
        WebhookEventKind::CustomerReply,
        WebhookEventKind::OperatorReply,
        WebhookEventKind::Assigned,
        WebhookEventKind::StatusChanged,
        WebhookEventKind::DeliveryFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventKind::TicketCreated => "ticket.creado",
            WebhookEventKind::CustomerReply => "ticket.respuesta_cliente",
            WebhookEventKind::OperatorReply => "ticket.respuesta_operador",
            WebhookEventKind::Assigned => "ticket.asignado",
            WebhookEventKind::StatusChanged => "ticket.estado",
            WebhookEventKind::DeliveryFailed => "ticket.entrega_fallida",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// The stored form of a set (`webhook.eventos`): the names, comma-separated.
    pub fn join(kinds: &BTreeSet<WebhookEventKind>) -> String {
        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
    }

    /// The set a stored list names; `None` when a name is unknown.
    pub fn parse_list(list: &str) -> Option<BTreeSet<WebhookEventKind>> {
        list.split(',').filter(|s| !s.trim().is_empty()).map(Self::parse).collect()
    }
}

/// A subscription: where to POST which events, and the secret they are
/// signed with (sealed with the server's `SecretBox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: BTreeSet<WebhookEventKind>,
    pub sealed_secret: Vec<u8>,
    pub status: Status,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    /// Whether new events of this kind are delivered to it.
    pub fn wants(&self, kind: WebhookEventKind) -> bool {
        self.status.is_active() && self.events.contains(&kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: BTreeSet<WebhookEventKind>,
    pub sealed_secret: Vec<u8>,
    pub status: Status,
    pub now: Timestamp,
}

/// An operator an event names (the assignee, the author of a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPerson {
    pub id: i64,
    pub name: String,
    pub email: String,
}

impl EventPerson {
    pub fn of(user: &super::InternalUser) -> Self {
        EventPerson { id: user.id, name: user.name.clone(), email: user.email.clone() }
    }

    fn json(&self) -> Value {
        json!({ "id_usuario": self.id, "nombre": self.name, "correo": self.email })
    }
}

/// The ticket as the change leaves it (its id is known only once written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTicket {
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub department_id: i64,
    pub department: String,
    pub assignee: Option<EventPerson>,
    pub requester: String,
}

/// The message an event is about (its id is known only once written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    pub direction: Direction,
    pub from: String,
    /// The first [`EXCERPT_CHARS`] characters of its text.
    pub excerpt: String,
    /// An auto-reply, bounce or bulk mail.
    pub automatic: bool,
}

/// Characters of a message's text an event carries.
pub const EXCERPT_CHARS: usize = 1000;

impl EventMessage {
    pub fn new(direction: Direction, from: &str, body: &str, automatic: bool) -> Self {
        EventMessage {
            direction,
            from: from.to_string(),
            excerpt: body.chars().take(EXCERPT_CHARS).collect(),
            automatic,
        }
    }
}

/// What a `ticket.estado` or `ticket.asignado` event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventChange {
    Status { from: TicketStatus, to: TicketStatus },
    Assignee { from: Option<i64>, to: Option<i64> },
}

impl EventChange {
    fn json(&self) -> Value {
        match *self {
            EventChange::Status { from, to } => {
                json!({ "campo": "estado", "anterior": from.as_str(), "nuevo": to.as_str() })
            }
            EventChange::Assignee { from, to } => json!({ "campo": "asignado", "anterior": from, "nuevo": to }),
        }
    }
}

/// An event to write with the change it announces ([`super::NewIncoming`],
/// [`super::NewReply`], [`super::TicketUpdate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    /// `evt_` and 24 random letters and digits: the same on every attempt of
    /// every delivery of the event, for receivers to drop repeats.
    pub id: String,
    pub kind: WebhookEventKind,
    pub ticket: EventTicket,
    pub message: Option<EventMessage>,
    pub change: Option<EventChange>,
    /// The operator who did it; `None` for the customer or the system.
    pub actor: Option<EventPerson>,
    /// For `ticket.entrega_fallida`: to whom, and why (`entrega`).
    pub failure: Option<EventFailure>,
    pub occurred_at: Timestamp,
}

/// A delivery given up: its recipient and the last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFailure {
    pub recipient: String,
    pub reason: String,
}

impl NewWebhookEvent {
    /// An event with a fresh id, about no message, change or actor yet.
    pub fn new(kind: WebhookEventKind, ticket: EventTicket, occurred_at: Timestamp) -> Self {
        NewWebhookEvent {
            id: new_event_id(),
            kind,
            ticket,
            message: None,
            change: None,
            actor: None,
            failure: None,
            occurred_at,
        }
    }

    pub fn with_failure(self, failure: EventFailure) -> Self {
        NewWebhookEvent { failure: Some(failure), ..self }
    }

    pub fn with_message(self, message: EventMessage) -> Self {
        NewWebhookEvent { message: Some(message), ..self }
    }

    pub fn with_change(self, change: EventChange) -> Self {
        NewWebhookEvent { change: Some(change), ..self }
    }

    pub fn with_actor(self, actor: Option<EventPerson>) -> Self {
        NewWebhookEvent { actor, ..self }
    }

    /// The JSON body every delivery of the event sends, once the store
    /// knows the ticket's id and the message's (`message_id`, for an event
    /// with a message). Keys in the API's Spanish; `mensaje`, `cambio` and
    /// `autor` are `null` when the event has none.
    pub fn body(&self, ticket_id: i64, message_id: Option<i64>) -> String {
        let t = &self.ticket;
        let message = self.message.as_ref().map(|m| {
            json!({
                "id_detalle_ticket": message_id,
                "direccion": m.direction.as_str(),
                "remitente": m.from,
                "extracto": m.excerpt,
                "automatico": m.automatic,
            })
        });
        let mut body = json!({
            "id": self.id,
            "evento": self.kind.as_str(),
            "fecha": self.occurred_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "ticket": {
                "id_ticket": ticket_id,
                "asunto": t.subject,
                "estado": t.status.as_str(),
                "prioridad": t.priority.as_str(),
                "id_departamento": t.department_id,
                "departamento": t.department,
                "id_usuario_asignado": t.assignee.as_ref().map(|a| a.id),
                "asignado": t.assignee.as_ref().map(EventPerson::json),
                "solicitante": t.requester,
            },
            "mensaje": message,
            "cambio": self.change.as_ref().map(EventChange::json),
            "autor": self.actor.as_ref().map(EventPerson::json),
        });
        if let Some(f) = &self.failure {
            body["entrega"] = json!({ "destinatario": f.recipient, "motivo": f.reason });
        }
        body.to_string()
    }
}

/// A fresh event id: `evt_` and 24 random letters and digits (~143 bits).
pub fn new_event_id() -> String {
    format!("evt_{}", crate::crypto::random_token(24))
}

/// A delivery's state: `pendiente`, `enviada`, `fallida` (the outbox's).
pub type DeliveryStatus = NoticeStatus;

/// One event for one subscription (`webhook_entrega`), with what sending it
/// takes: the event's body and kind, the subscription's URL and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub event_id: String,
    pub webhook_id: i64,
    pub kind: WebhookEventKind,
    pub ticket_id: i64,
    pub body: String,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    /// A worker holds the delivery until then (a lease).
    pub leased_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Sent,
    /// Try again at `next_attempt_at`.
    Retry { error: String, next_attempt_at: Timestamp },
    /// Given up: out of attempts, or refused for good (410 Gone).
    Failed { error: String },
}

/// A signed POST of one delivery, as the domain builds it: the adapter
/// sends these headers and this body, and adds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPost {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_lists_refuse_unknown_names() {
        for k in WebhookEventKind::ALL {
            assert_eq!(WebhookEventKind::parse(k.as_str()), Some(k));
        }
        let all: BTreeSet<_> = WebhookEventKind::ALL.into_iter().collect();
        assert_eq!(WebhookEventKind::parse_list(&WebhookEventKind::join(&all)), Some(all));
        assert_eq!(WebhookEventKind::parse_list(""), Some(BTreeSet::new()));
        assert_eq!(WebhookEventKind::parse_list("ticket.creado,ticket.borrado"), None);
        assert_eq!(WebhookEventKind::parse("ticket.creado "), Some(WebhookEventKind::TicketCreated));
    }

    #[test]
    fn the_body_names_the_ticket_and_message_once_written() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_micro_opt(7, 10, 52, 5).unwrap();
        let ana = EventPerson { id: 3, name: "Ana".into(), email: "ana@helpdesk.test".into() };
        let ticket = EventTicket {
            subject: "No imprime".into(),
            status: TicketStatus::Open,
            priority: Priority::Normal,
            department_id: 1,
            department: "Soporte".into(),
            assignee: Some(ana.clone()),
            requester: "cliente@ejemplo.test".into(),
        };
        let long = "ñ".repeat(EXCERPT_CHARS + 5);
        let event = NewWebhookEvent::new(WebhookEventKind::StatusChanged, ticket, at)
            .with_message(EventMessage::new(Direction::Incoming, "Cliente <cliente@ejemplo.test>", &long, false))
            .with_change(EventChange::Status { from: TicketStatus::Closed, to: TicketStatus::Open });
        assert!(event.id.starts_with("evt_") && event.id.len() == 28, "{}", event.id);
        assert_ne!(event.id, new_event_id());
        let body: Value = serde_json::from_str(&event.body(12, Some(40))).unwrap();
        assert_eq!(body["id"], event.id.as_str());
        assert_eq!(body["evento"], "ticket.estado");
        assert_eq!(body["fecha"], "2026-11-30T07:10:52Z");
        assert_eq!(body["ticket"]["id_ticket"], 12);
        assert_eq!(body["ticket"]["asignado"]["correo"], "ana@helpdesk.test");
        assert_eq!(body["ticket"]["id_usuario_asignado"], 3);
        assert_eq!(body["mensaje"]["id_detalle_ticket"], 40);
        assert_eq!(body["mensaje"]["extracto"].as_str().unwrap().chars().count(), EXCERPT_CHARS);
        assert_eq!(body["cambio"], json!({"campo": "estado", "anterior": "cerrado", "nuevo": "abierto"}));
        assert_eq!(body["autor"], Value::Null);
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "evento", "fecha", "ticket", "mensaje", "cambio", "autor"]);

        let assigned = NewWebhookEvent::new(WebhookEventKind::Assigned, event.ticket.clone(), at)
            .with_change(EventChange::Assignee { from: None, to: Some(3) })
            .with_actor(Some(ana));
        let body: Value = serde_json::from_str(&assigned.body(12, None)).unwrap();
        assert_eq!(body["mensaje"], Value::Null);
        assert_eq!(body["cambio"], json!({"campo": "asignado", "anterior": null, "nuevo": 3}));
        assert_eq!(body["autor"]["id_usuario"], 3);
    }
}
