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
