//! Route table.

pub(crate) mod adi;
pub(crate) mod bot;
mod health;
pub(crate) mod mail;
pub(crate) mod sso;
pub(crate) mod tickets;
pub(crate) mod users;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::ports::Adapters;
use serde_json::json;

use crate::audit::{AuditCtx, audit_middleware};
use crate::envelope::render;
use crate::error::ApiError;
use crate::extract::answered;
use crate::security::security_middleware;

/// Registers every route. The caller provides `web::Data<AppState<A>>`.
/// Every route sits in one scope behind [`security_middleware`] (client
/// address, `/metrics` allow-list, CORS, response headers); `/api` adds the
/// bitácora inside it, so CORS preflights are answered before the bitácora.
pub fn configure<A: Adapters>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(security_middleware::<A>))
            .route("/health", web::get().to(health::health))
            .route("/ready", web::get().to(health::ready::<A>))
            .route("/metrics", web::get().to(health::metrics::<A>))
            .route(
                "/docs",
                web::get()
                    .to(|| async { HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish() }),
            )
            .service(utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", crate::openapi::document()))
            .service(
                web::scope("/api")
                    .wrap(actix_web::middleware::from_fn(audit_middleware::<A>))
                    .service(post("/SSO/access", answered(sso::access::<A>)))
                    .service(resource("/SSO/refreshUserToken", Method::GET, answered(sso::refresh::<A>)))
                    .service(post("/SSO/password/forgot", answered(sso::forgot::<A>)))
                    .service(post("/SSO/password/reset", answered(sso::reset::<A>)))
                    .service(post("/SSO/ADI/setToken", answered(adi::set_token::<A>)))
                    .service(post("/SSO/ADI/generateToken", answered(adi::generate_token::<A>)))
                    .service(post("/SSO/ADI/Token", answered(adi::token::<A>)))
                    .service(post("/UsuarioInterno/get", answered(users::get::<A>)))
                    .service(
                        web::resource("/Synology/BotAsistencia/configurarIdUsuario")
                            .route(web::post().to(answered(bot::configure::<A>)))
                            .route(web::head().to(bot::probe))
                            .default_service(web::to(|req: HttpRequest| async move {
                                method_not_allowed(&req, "POST, HEAD")
                            })),
                    )
                    .service(post("/correo/getConfigCorreos", answered(mail::get_config::<A>)))
                    .service(post("/correo/save", answered(mail::save::<A>)))
                    .service(resource("/tickets", Method::GET, answered(tickets::list::<A>)))
                    .service(
                        web::resource("/tickets/{id}")
                            .route(web::get().to(answered(tickets::show::<A>)))
                            .route(web::patch().to(answered(tickets::change::<A>)))
                            .default_service(web::to(|req: HttpRequest| async move {
                                method_not_allowed(&req, "GET, PATCH")
                            })),
                    )
                    .service(post("/tickets/{id}/respuestas", answered(tickets::reply::<A>)))
                    .service(resource(
                        "/tickets/{id}/adjuntos/{id_adjunto}",
                        Method::GET,
                        answered(tickets::attachment::<A>),
                    ))
                    .default_service(web::to(api_not_found)),
            )
            .default_service(web::to(not_found)),
    );
}

/// A resource answering one method; the others get a JSON 405.
fn resource<F, Args>(path: &str, method: Method, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allow: &'static str = if method == Method::GET { "GET" } else { "POST" };
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move |req: HttpRequest| async move { method_not_allowed(&req, allow) }))
}

fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource(path, Method::POST, handler)
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
