//! The mail-reading channel's own state: where it stopped in each mailbox,
//! and the mail it could not import.

use super::Timestamp;

/// The last UID imported from one mailbox of one account, valid while the
/// server keeps the same UIDVALIDITY (`correo_lectura`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// Why a mail was set aside instead of becoming a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    /// Larger than the channel's limit; not downloaded.
    TooLarge,
    /// Not a mail a ticket can be made of (no sender, not RFC 5322).
    Unparsable,
    /// Parsed, but the ingestion refused it.
    Rejected,
}

impl QuarantineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::TooLarge => "too_large",
            QuarantineReason::Unparsable => "unparsable",
            QuarantineReason::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::TooLarge, Self::Unparsable, Self::Rejected].into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a mail sits on the IMAP server: enough to fetch it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLocation {
    pub account_id: i64,
    pub mailbox: String,
    pub uid_validity: u32,
    pub uid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantined {
    pub location: MailLocation,
    pub size: i64,
    pub reason: QuarantineReason,
    /// The error in words, for the operator.
    pub detail: String,
    /// The raw message in the channel's storage, when it was downloaded.
    pub raw_route: Option<String>,
    pub now: Timestamp,
}

/// A mail in quarantine (`correo_cuarentena`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedMail {
    pub id: i64,
    pub location: MailLocation,
    pub size: i64,
    pub reason: QuarantineReason,
    pub detail: String,
    pub raw_route: Option<String>,
    /// Retries after the first failure.
    pub attempts: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set when a retry turned it into a ticket.
    pub ticket_id: Option<i64>,
}

impl QuarantinedMail {
    pub fn is_resolved(&self) -> bool {
        self.ticket_id.is_some()
    }
}

/// Why a mail was held instead of opening a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// Sent from one of the helpdesk's own addresses (a mailbox of the
    /// reading channel, the SMTP sender, `mail.own_addresses`) and
    /// continuing no ticket: a copy of our own mail, or a loop.
    OwnAddress,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::OwnAddress => "remitente_propio",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::OwnAddress].into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHeldMail {
    /// The mail's dedupe key: the same mail is held once.
    pub dedupe_key: String,
    pub reason: HoldReason,
    pub mail: super::IncomingMail,
    pub now: Timestamp,
}

/// A mail held whole (`correo_retenido`) until an administrator releases
/// it into a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMail {
    pub id: i64,
    pub dedupe_key: String,
    pub reason: HoldReason,
    pub mail: super::IncomingMail,
    pub created_at: Timestamp,
    /// The ticket it became when released.
    pub ticket_id: Option<i64>,
    pub released_at: Option<Timestamp>,
}

impl HeldMail {
    pub fn is_released(&self) -> bool {
        self.ticket_id.is_some()
    }
}
