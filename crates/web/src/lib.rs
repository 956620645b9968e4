//! The operators' console: server-rendered pages under `/consola/`, a
//! driving adapter beside the API that calls the domain's services only
//! (the same visibility rules and validation as the API).
//!
//! Pages are askama templates (`templates/`, checked at compile time); every
//! word they show is in [`texts`]; the stylesheet and the vendored htmx are
//! compiled in and served under fingerprinted names ([`assets`]). A session
//! is a random key in an `HttpOnly`, `SameSite=Strict` cookie
//! ([`session`]); every form carries a CSRF token and a POST's `Origin` is
//! checked. The CSP allows no inline script.

pub mod assets;
mod audit;
mod html;
mod live;
mod pages;
mod password;
mod render;
pub mod session;
pub mod texts;
mod ticket;
mod when;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::ports::{Adapters, Clock};
use helpdesk_domain::services::{AdminService, AuditService, ConsoleService, DirectoryService, TicketService};
use tokio_util::task::TaskTracker;

pub use session::Site;

/// The console's CSP: its own files only, no inline script or style, no
/// frames, forms posting to itself.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The client's address as the server resolves it (trusted proxies).
pub type ClientIp = Arc<dyn Fn(&HttpRequest) -> Option<IpAddr> + Send + Sync>;

/// What the pages need: the services, over the adapters the server runs on.
pub struct WebState<A: Adapters> {
    pub console: ConsoleService<A::Store>,
    pub tickets: TicketService<A::Store>,
    pub admin: AdminService<A::Store>,
    pub directory: DirectoryService<A::Store>,
    /// The bitácora (the API's writer: one group commit for both).
    pub audit: AuditService<A::Store>,
    /// Sends the password-reset e-mail.
    pub mailer: Arc<A::Mail>,
    /// Work left running after an answer (the reset e-mail), waited for at
    /// shutdown.
    pub tasks: TaskTracker,
    pub clock: Arc<dyn Clock>,
    pub site: Site,
    /// Where the attachments' files are (`reader.storage_dir`).
    pub attachments_dir: std::path::PathBuf,
    pub client_ip: ClientIp,
}

/// Registers `/consola` (register it before the API's catch-all scope).
/// The caller provides `web::Data<WebState<A>>`.
pub fn configure<A: Adapters>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/consola")
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CONSOLE_CSP))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "same-origin"))
                    .add(("Cache-Control", "no-store")),
            )
            .route("", web::get().to(|| async { redirect("/consola/tickets") }))
            .route("/", web::get().to(|| async { redirect("/consola/tickets") }))
            .route("/entrar", web::get().to(pages::sign_in_form::<A>))
            .route("/entrar", web::post().to(pages::sign_in::<A>))
            .route("/salir", web::post().to(pages::sign_out::<A>))
            .route("/olvido", web::get().to(password::forgot_form::<A>))
            .route("/olvido", web::post().to(password::forgot::<A>))
            .route("/restablecer", web::get().to(password::reset_form::<A>))
            .route("/restablecer", web::post().to(password::reset::<A>))
            .route("/tickets", web::get().to(pages::queue::<A>))
            .route("/vivo", web::get().to(pages::queue_pulse::<A>))
            .route("/tickets/{id}", web::get().to(ticket::show::<A>))
            .route("/tickets/{id}/vivo", web::get().to(ticket::pulse::<A>))
            .route("/tickets/{id}/respuesta", web::post().to(ticket::reply::<A>))
            .route("/tickets/{id}/cambios", web::post().to(ticket::change::<A>))
            .route("/tickets/{id}/adjuntos/{adjunto}", web::get().to(ticket::attachment::<A>))
            // Compressed when the browser takes it (the assets only: a page
            // holds a CSRF token beside what the request reflects).
            .service(web::resource("/static/{file}").wrap(Compress::default()).route(web::get().to(assets::serve)))
            .default_service(web::to(not_found)),
    );
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", to)).finish()
}

async fn not_found() -> HttpResponse {
    render::message(StatusCode::NOT_FOUND, texts::T.not_found_title, texts::T.not_found)
}
