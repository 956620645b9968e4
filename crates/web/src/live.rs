//! The pages' live updates: every two seconds an open page asks for its
//! live part (`hx-get` on `#pulso`), sending the fingerprint of what it
//! shows (`huella`). The server renders the part again; the same
//! fingerprint is answered with an empty 204 (nothing moves on the page),
//! another with the part, swapped out of band into its places. The
//! database is the only shared state, so a change made through any server
//! shows on every page within one period and a request.
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

/// The fingerprint of a live part as rendered.
pub(crate) fn fingerprint(live: &str) -> String {
    // SipHash with fixed keys: the same text gives the same fingerprint on
    // every server running this build.
    let mut h = std::hash::DefaultHasher::new();
    live.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A live part rendered, or the failure page's status.
pub(crate) fn render(part: &impl Template) -> Result<String, HttpResponse> {
    part.render().map_err(|e| {
        tracing::error!(error = %helpdesk_domain::Report(&e), "a console page's live part did not render");
        HttpResponse::InternalServerError().finish()
    })
}

/// The answer to a page asking for its live part: nothing when it shows
/// it already and there is no `extra` (more out-of-band swaps), else the
/// part, `extra` and the new fingerprint.
pub(crate) fn answer(req: &HttpRequest, live: String, extra: Option<String>) -> HttpResponse {
    let huella = fingerprint(&live);
    let given = crate::render::params(req).remove("huella").unwrap_or_default();
    if given == huella && extra.is_none() {
        return HttpResponse::NoContent().finish();
    }
    let mut body = live;
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
