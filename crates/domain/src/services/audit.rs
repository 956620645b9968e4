//! The bitácora: opening and closing audit records, and redaction of secrets
//! before anything reaches the store or the logs.

use std::sync::Arc;

use serde_json::Value;

use crate::error::RepoError;
use crate::model::{AuditEntry, AuditOutcome, NewAuditEntry};
use crate::ports::AuditRepository;

/// Keys whose values never reach the bitácora (compared case-insensitively,
/// at any depth). Mailbox passwords arrive as `password`.
pub const REDACTED_KEYS: &[&str] =
    &["password", "password_confirmation", "token", "pin", "x-user-secret", "secret", "authorization"];

pub const REDACTED: &str = "[REDACTED]";

/// Longest body kept in a record, in characters; the rest is cut with a note.
pub const MAX_AUDIT_BODY_CHARS: usize = 16_384;

fn is_secret_key(key: &str) -> bool {
    REDACTED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// Replaces the value of every secret key, at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The text stored for a request body: redacted JSON, or, for a body that is
/// not a JSON object or array (malformed, binary), only its size, because an
/// unparsable body might hold a secret we cannot find.
pub fn redacted_body_text(body: Option<Value>, raw_len: usize) -> String {
    let text = match body {
        Some(mut v @ (Value::Object(_) | Value::Array(_))) => {
            redact(&mut v);
            v.to_string()
        }
        Some(_) | None if raw_len == 0 => String::new(),
        _ => format!("<cuerpo no JSON de {raw_len} bytes omitido>"),
    };
    truncate_chars(&text, MAX_AUDIT_BODY_CHARS)
}

/// Cuts a string to at most `max` characters (never inside a character).
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

pub struct AuditService<R: AuditRepository> {
    repo: Arc<R>,
}

impl<R: AuditRepository> Clone for AuditService<R> {
    fn clone(&self) -> Self {
        Self { repo: self.repo.clone() }
    }
}

impl<R: AuditRepository> AuditService<R> {
    pub fn new(repo: Arc<R>) -> Self {
        Self { repo }
    }

    /// Opens the record of a request before it is handled, so that even a
    /// request that never finishes leaves a trace. The body must already be
    /// redacted (see [`redacted_body_text`]).
    pub async fn open(&self, entry: NewAuditEntry) -> Result<i64, RepoError> {
        self.repo.open_audit(entry).await
    }

    pub async fn close(&self, id: i64, outcome: AuditOutcome) -> Result<(), RepoError> {
        self.repo.close_audit(id, outcome).await
    }

    pub async fn find(&self, id: i64) -> Result<Option<AuditEntry>, RepoError> {
        self.repo.find_audit(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_case() {
        let mut v = json!({
            "usuario": "ana", "Password": "p1", "pin": "1234",
            "nested": {"token": "t", "list": [{"password_confirmation": "p2"}]},
            "X-User-Secret": "s"
        });
        redact(&mut v);
        let s = v.to_string();
        for secret in ["p1", "1234", "\"t\"", "p2", "\"s\""] {
            assert!(!s.contains(secret), "{secret} leaked in {s}");
        }
        assert!(s.contains("ana"));
        assert_eq!(v["nested"]["list"][0]["password_confirmation"], REDACTED);
    }

    #[test]
    fn unparsable_bodies_are_not_stored() {
        let t = redacted_body_text(None, 17);
        assert!(t.contains("17 bytes"));
        assert_eq!(redacted_body_text(None, 0), "");
        assert!(redacted_body_text(Some(json!("password=x")), 10).contains("10 bytes"));
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("ñañaña", 3), "ñañ…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
