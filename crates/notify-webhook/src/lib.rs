//! The outgoing-webhook adapter ([`WebhookSender`]): one POST per attempt,
//! with exactly the headers and body the domain built (it signs them; see
//! `helpdesk_domain::services::WebhookDispatcher`), answered by the HTTP
//! status, whatever it is. Redirects are not followed (a 3xx is an answer:
//! the signed body is not re-sent elsewhere), and an attempt gives up after
//! the configured timeout (connecting included). Error texts carry no URL:
//! a subscription's URL may hold credentials.

use std::time::Duration;

use helpdesk_domain::model::WebhookPost;
use helpdesk_domain::ports::{BoxFuture, WebhookSender};

pub struct HttpWebhookSender {
    http: reqwest::Client,
    timeout: Duration,
}

#[derive(Debug)]
pub struct WebhookConfigError(pub String);

impl std::fmt::Display for WebhookConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WebhookConfigError {}

impl HttpWebhookSender {
    /// A client whose every attempt ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, WebhookConfigError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookConfigError(e.to_string()))?;
        Ok(Self { http, timeout })
    }

    async fn send(&self, post: WebhookPost) -> Result<u16, String> {
        let mut request = self.http.post(&post.url);
        for (name, value) in &post.headers {
            request = request.header(*name, value);
        }
        match request.body(post.body).send().await {
            // The body is not read: only the status counts.
            Ok(answer) => Ok(answer.status().as_u16()),
            Err(e) if e.is_timeout() => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            Err(e) => Err(describe(e)),
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

impl WebhookSender for HttpWebhookSender {
    fn post(&self, post: WebhookPost) -> BoxFuture<'_, Result<u16, String>> {
        Box::pin(self.send(post))
    }
}
