//! The pages' live updates: every two seconds an open page asks for its
//! live part (`hx-get` on `#pulso`), sending the fingerprint it was given
//! with its last part (`huella`). The fingerprint is of a probe: a few
//! cheap reads that change whenever the part would (the latest activity of
//! any ticket, the views' counts, who is answering, the minute; for a
//! ticket, its row's last change, its replies' deliveries, who else is
//! on it). The same probe is answered with an empty 204 (nothing moves on
//! the page); another with the part, rendered then, swapped out of band
//! into its places. The database is the only shared state, so a change
//! made through any server shows on every page within one period and a
//! request.
//!
//! These requests do not count as the session's use
//! ([`ConsoleService::resume_unattended`](helpdesk_domain::services::ConsoleService::resume_unattended)):
//! a page left open still ends its session after `consola.idle_minutes`,
//! and then says so and stops asking (286).

use std::hash::{Hash, Hasher};

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use askama::Template;
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ConsoleError, Visit};

use crate::WebState;
use crate::audit::ActingUser;
use crate::session;
use crate::texts::T;

/// The status that tells htmx to stop polling.
const STOP_POLLING: u16 = 286;

/// The fingerprint of a probe.
pub(crate) fn fingerprint(probe: &str) -> String {
    // SipHash with fixed keys: the same text gives the same fingerprint on
    // every server running this build.
    let mut h = std::hash::DefaultHasher::new();
    probe.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A live part rendered, or the failure page's status.
pub(crate) fn render(part: &impl Template) -> Result<String, Box<HttpResponse>> {
    part.render().map_err(|e| {
        tracing::error!(error = %helpdesk_domain::Report(&e), "a console page's live part did not render");
        Box::new(HttpResponse::InternalServerError().finish())
    })
}

/// The fingerprint the page says it shows.
pub(crate) fn given(req: &HttpRequest) -> String {
    crate::render::params(req).remove("huella").unwrap_or_default()
}

/// The minute: due times are shown in words ("vence en 5 min"), so a
/// page's part changes with it.
pub(crate) fn minute(now: helpdesk_domain::model::Timestamp) -> String {
    now.format("%Y%m%d%H%M").to_string()
}

/// Nothing the page shows has changed.
pub(crate) fn unchanged() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// The part (`live`, empty when only `extra` changed), `extra` (more
/// out-of-band swaps) and the fingerprint the page now shows.
pub(crate) fn part(live: &str, extra: Option<String>, huella: &str) -> HttpResponse {
    let mut body = live.to_string();
    body.push_str(&extra.unwrap_or_default());
    body.push_str(&format!(r#"<input type="hidden" id="huella" name="huella" value="{huella}" hx-swap-oob="true">"#));
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

#[derive(Template)]
#[template(source = r#"<p id="aviso-vivo" hx-swap-oob="innerHTML">{{ why }}</p>"#, ext = "html")]
struct Stopped {
    why: &'static str,
}

/// The page stops asking and says why (its session ended, its ticket is
/// out of reach).
pub(crate) fn stop(why: &'static str) -> HttpResponse {
    let body = Stopped { why }.render().unwrap_or_default();
    HttpResponse::build(StatusCode::from_u16(STOP_POLLING).unwrap_or(StatusCode::OK))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The live session of a page's own request, its use not recorded; or the
/// answer that stops the page asking.
pub(crate) async fn watcher<A: Adapters>(state: &WebState<A>, req: &HttpRequest) -> Result<Visit, HttpResponse> {
    let Some(key) = session::session_key(req) else {
        return Err(stop(T.live_signed_out));
    };
    match state.console.resume_unattended(&key).await {
        Ok(v) => {
            req.extensions_mut().insert(ActingUser(v.operator.id()));
            Ok(v)
        }
        Err(ConsoleError::SignedOut | ConsoleError::NotAnOperator) => Err(stop(T.live_signed_out)),
        Err(e) => {
            tracing::warn!(error = %helpdesk_domain::Report(&e), "a console page's live update failed");
            Err(HttpResponse::ServiceUnavailable().finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_the_text() {
        assert_eq!(fingerprint("<p>a</p>"), fingerprint("<p>a</p>"));
        assert_ne!(fingerprint("<p>a</p>"), fingerprint("<p>b</p>"));
        assert_eq!(fingerprint("x").len(), 16);
    }
}
