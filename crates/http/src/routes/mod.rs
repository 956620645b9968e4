//! Route table.

mod health;
mod mail;
mod users;

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::ports::Store;
use serde_json::json;

use crate::audit::{AuditCtx, audit_middleware};
use crate::envelope::render;
use crate::error::ApiError;

/// Registers every route. The caller provides `web::Data<AppState<S>>`.
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready::<S>))
        .service(
            web::scope("/api")
                .wrap(actix_web::middleware::from_fn(audit_middleware::<S>))
                .service(post("/UsuarioInterno/get", users::get::<S>))
                .service(post("/correo/getConfigCorreos", mail::get_config::<S>))
                .default_service(web::to(api_not_found)),
        )
        .default_service(web::to(not_found));
}

/// A POST-only resource whose other methods get a JSON 405.
fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|req: HttpRequest| async move { method_not_allowed(&req, "POST") }))
}

fn method_not_allowed(req: &HttpRequest, allow: &'static str) -> HttpResponse {
    render(None, AuditCtx::of(req).id, Err(ApiError::MethodNotAllowed(allow)))
}

async fn api_not_found(req: HttpRequest) -> HttpResponse {
    let msg = format!("La ruta {} no existe.", req.path().trim_start_matches('/'));
    render(None, AuditCtx::of(&req).id, Err(ApiError::NotFound(msg)))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "message": format!("La ruta {} no existe.", req.path().trim_start_matches('/'))
    }))
}
