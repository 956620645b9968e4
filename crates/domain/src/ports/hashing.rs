//! Password hashing, off the async threads.

use super::*;

/// Password hashing off the async threads (Argon2id costs tens of ms).
/// Object-safe so services can hold `Arc<dyn PasswordHasher>`.
pub trait PasswordHasher: Send + Sync + 'static {
    fn hash(&self, secret: String) -> std::pin::Pin<Box<dyn Future<Output = String> + Send>>;
    /// `false` for a wrong secret and for a malformed stored hash.
    fn verify(&self, secret: String, phc: String) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>>;
}

/// Argon2 inline on the calling thread: for tests and the admin CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineHasher;

impl PasswordHasher for InlineHasher {
    fn hash(&self, secret: String) -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> {
        Box::pin(async move { crate::crypto::hash_password(&secret) })
    }
    fn verify(&self, secret: String, phc: String) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> {
        Box::pin(async move { crate::crypto::verify_password(&secret, &phc).unwrap_or(false) })
    }
}
