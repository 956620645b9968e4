//! The operators' console's sessions.

use super::Timestamp;

/// A browser's session in the console (`sesion_consola`). The browser holds
/// a random id; the store only its SHA-256 (`id_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub user_id: i64,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

/// An operator with a ticket open in the console (`presencia`), as last
/// reported by their page: kept in the store so that every server sees
/// every operator, and counted only while recent (`consola.presence_secs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub ticket_id: i64,
    pub user_id: i64,
    /// The user's name (read with the row).
    pub name: String,
    /// Writing a reply (the page's reply box holds text).
    pub answering: bool,
    pub seen_at: Timestamp,
}
