//! Sending: e-mail and Synology Chat.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying: connection refused, timeout, 4xx from SMTP.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Retrying will not help: the address or message was refused for good.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Sends e-mail (SMTP in production). The adapter writes the words: the
/// subject and body of each [`MailContent`] live in its templates.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait MailNotifier: Send + Sync + 'static {
    /// Sends one message; returns its Message-ID (without angle brackets).
    fn send(&self, mail: OutgoingMail) -> impl Future<Output = Result<String, NotifyError>> + Send;
}

/// Synology Chat (the bot for users, incoming webhooks for channels). The
/// adapter writes the words of each [`ChatContent`].
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ChatNotifier: Send + Sync + 'static {
    /// Sends `message` to one user through the chatbot; returns Synology's
    /// answer (JSON). `success: false` in the answer is an error.
    fn send_to_user(
        &self,
        synology_user_id: i64,
        message: ChatContent,
    ) -> impl Future<Output = Result<serde_json::Value, NotifyError>> + Send;
    /// Posts `message` to a channel through its incoming-webhook token.
    fn send_to_channel(
        &self,
        webhook_token: String,
        message: ChatContent,
    ) -> impl Future<Output = Result<serde_json::Value, NotifyError>> + Send;
}

/// Outgoing webhooks: POSTs a signed delivery (the domain writes every
/// header). Object-safe: the server holds it as `Arc<dyn WebhookSender>`.
pub trait WebhookSender: Send + Sync + 'static {
    /// Sends `post` once and gives the HTTP status the receiver answered,
    /// whatever it is, or why there was no answer (refused, timed out: the
    /// text says which, without the secret). MUST NOT follow redirects (a
    /// 3xx is an answer like any other) and MUST give up after the
    /// adapter's timeout.
    fn post(&self, post: WebhookPost) -> BoxFuture<'_, Result<u16, String>>;
}
