//! The bitácora: one audit record per request under `/api/`.

use super::Timestamp;

/// What is known of a request before it is handled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    /// The `X-User-Consumo` header as sent (truncated), even when refused.
    pub consumer_name: Option<String>,
    /// Path below `/api/` as requested (truncated).
    pub endpoint: String,
    pub method: String,
    pub client_ip: String,
    /// The request body with every secret redacted.
    pub body: String,
    /// The earlier record this request links to (`id_bitacora_log` sent).
    pub parent_id: Option<i64>,
}

/// How the request ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditOutcome {
    /// The authenticated consumer, when authentication succeeded.
    pub consumer_id: Option<i64>,
    pub status: u16,
    pub duration_us: i64,
    /// The acting user: the operator of a ticket-API call's token, or the
    /// console's signed-in user. (Absent in records spooled by older
    /// versions.)
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// A finished record, as written: its id was reserved before the request
/// was handled (the answer carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: NewAuditEntry,
    pub outcome: AuditOutcome,
}

/// A finished record kept on local disk while the store cannot take it
/// (see `ports::AuditSpool`). `id` is `None` for a request answered while no
/// id could be reserved; one is given when the spool is drained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpooledAudit {
    pub id: Option<i64>,
    pub entry: NewAuditEntry,
    pub outcome: AuditOutcome,
}

impl From<AuditRecord> for SpooledAudit {
    fn from(r: AuditRecord) -> Self {
        SpooledAudit { id: Some(r.id), entry: r.entry, outcome: r.outcome }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub consumer_id: Option<i64>,
    pub consumer_name: Option<String>,
    pub endpoint: String,
    pub method: String,
    pub client_ip: String,
    /// `None` while the request is still running.
    pub status: Option<u16>,
    pub duration_us: Option<i64>,
    pub body: String,
    pub parent_id: Option<i64>,
    /// See [`AuditOutcome::user_id`].
    pub user_id: Option<i64>,
}
