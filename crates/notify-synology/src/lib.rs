//! The chat notifier adapter: Synology Chat's HTTP API.
//!
//! Both methods POST to `<base>/webapi/entry.cgi?api=SYNO.Chat.External&
//! method=chatbot|incoming&version=2&token="<token>"` (the token in literal
//! double quotes) with a form field `payload=<JSON>`. Synology answers HTTP
//! 200 even on failure: `success` in the body decides. The words of every
//! message are written in [`messages`] from the content the domain asks for.
//!
//! The token travels in the URL, so no error text of this adapter carries
//! the URL (reqwest's errors are stripped of it with `without_url`), and any
//! text that came back from the other side is scrubbed of the token too:
//! these texts end up in answers, logs and `notificacion_intento.detalle`.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

use helpdesk_domain::model::ChatContent;
use helpdesk_domain::ports::{ChatNotifier, NotifyError};
use serde_json::{Value, json};

pub mod messages;
#[cfg(feature = "testing")]
pub mod testing;

#[derive(Debug, Clone)]
pub struct SynologySettings {
    /// `https://nas.example.com:5001`, no trailing path.
    pub base_url: String,
    /// The chatbot's token (for messages to users); never printed.
    pub bot_token: SecretString,
    pub timeout: Duration,
}

pub struct SynologyClient {
    http: reqwest::Client,
    endpoint: url::Url,
    bot_token: String,
}

#[derive(Debug)]
pub struct SynologyConfigError(pub String);

impl std::fmt::Display for SynologyConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SynologyConfigError {}

impl SynologyClient {
    pub fn new(s: &SynologySettings) -> Result<Self, SynologyConfigError> {
        let base = url::Url::parse(s.base_url.trim_end_matches('/'))
            .map_err(|e| SynologyConfigError(format!("invalid base URL {:?}: {e}", s.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SynologyConfigError(format!("base URL {:?} must be http(s)", s.base_url)));
        }
        let endpoint = base.join("/webapi/entry.cgi").map_err(|e| SynologyConfigError(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.timeout)
            .build()
            .map_err(|e| SynologyConfigError(e.to_string()))?;
        Ok(Self { http, endpoint, bot_token: s.bot_token.expose_secret().to_string() })
    }

    async fn post(&self, method: &str, token: &str, payload: Value) -> Result<Value, NotifyError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("api", "SYNO.Chat.External")
            .append_pair("method", method)
            .append_pair("version", "2")
            .append_pair("token", &format!("\"{token}\""));
        let scrub = |text: String| redact(text, token);
        let res = self
            .http
            .post(url)
            .form(&[("payload", payload.to_string())])
            .send()
            .await
            .map_err(|e| NotifyError::Temporary(scrub(format!("Synology unreachable: {}", describe(e)))))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| NotifyError::Temporary(scrub(format!("Synology answer unreadable: {}", describe(e)))))?;
        if !status.is_success() {
            return Err(NotifyError::Temporary(format!("Synology answered HTTP {status}")));
        }
        let answer: Value = serde_json::from_str(&body).map_err(|_| {
            NotifyError::Temporary(scrub(format!(
                "Synology answered non-JSON: {}",
                body.chars().take(200).collect::<String>()
            )))
        })?;
        if answer.get("success").and_then(Value::as_bool) == Some(true) {
            Ok(answer)
        } else {
            Err(NotifyError::Temporary(scrub(format!("Synology refused: {answer}"))))
        }
    }
}

/// A transport error and its causes, without the request URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `text` without the token, in any of the forms it travels in (as given,
/// and percent-encoded as the query string carries it).
fn redact(text: String, token: &str) -> String {
    if token.is_empty() {
        return text;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let mut out = text.replace(token, "[token]");
    if encoded != token {
        out = out.replace(&encoded, "[token]");
    }
    out
}

impl ChatNotifier for SynologyClient {
    async fn send_to_user(&self, synology_user_id: i64, message: ChatContent) -> Result<Value, NotifyError> {
        let text = messages::render(&message);
        self.post("chatbot", &self.bot_token, json!({ "text": text, "user_ids": [synology_user_id] })).await
    }

    async fn send_to_channel(&self, webhook_token: String, message: ChatContent) -> Result<Value, NotifyError> {
        let text = messages::render(&message);
        self.post("incoming", &webhook_token, json!({ "text": text })).await
    }
}
