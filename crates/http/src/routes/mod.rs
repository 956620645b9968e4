//! The router: the route table ([`crate::route`]) made into actix routes.

pub(crate) mod adi;
pub(crate) mod bot;
mod health;
pub(crate) mod mail;
pub(crate) mod sso;
pub(crate) mod tickets;
pub(crate) mod users;

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::Endpoint;
use helpdesk_domain::ports::Adapters;
use serde_json::json;

use crate::audit::{AuditCtx, audit_middleware};
use crate::envelope::render;
use crate::error::ApiError;
use crate::extract::answered;
use crate::route::by_path;
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
            .service(api::<A>())
            .default_service(web::to(not_found)),
    );
}

/// `/api`: one resource per path of the route table, its methods'
/// handlers, and a JSON 405 naming them for the others; then the JSON 404.
fn api<A: Adapters>() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut scope = web::scope("/api").wrap(actix_web::middleware::from_fn(audit_middleware::<A>));
    for (path, routes) in by_path() {
        let mut resource = web::resource(path.trim_start_matches("/api"));
        for r in &routes {
            resource = resource.route(handler::<A>(r.endpoint).method(r.verb.method()));
        }
        if routes.iter().any(|r| r.head_probe) {
            resource = resource.route(web::head().to(bot::probe));
        }
        let allow = routes[0].allow();
        resource = resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(&req, allow) }
        }));
        scope = scope.service(resource);
    }
    scope.default_service(web::to(api_not_found))
}

/// Each endpoint's handler. The match is exhaustive: an endpoint without a
/// handler does not compile.
fn handler<A: Adapters>(endpoint: Endpoint) -> actix_web::Route {
    use Endpoint as E;
    let r = web::route();
    match endpoint {
        E::SsoAccess => r.to(answered(sso::access::<A>)),
        E::SsoRefreshUserToken => r.to(answered(sso::refresh::<A>)),
        E::SsoPasswordForgot => r.to(answered(sso::forgot::<A>)),
        E::SsoPasswordReset => r.to(answered(sso::reset::<A>)),
        E::AdiSetToken => r.to(answered(adi::set_token::<A>)),
        E::AdiGenerateToken => r.to(answered(adi::generate_token::<A>)),
        E::AdiToken => r.to(answered(adi::token::<A>)),
        E::InternalUsers => r.to(answered(users::get::<A>)),
        E::SynologyBot => r.to(answered(bot::configure::<A>)),
        E::MailAccounts => r.to(answered(mail::get_config::<A>)),
        E::MailSave => r.to(answered(mail::save::<A>)),
        E::TicketList => r.to(answered(tickets::list::<A>)),
        E::TicketShow => r.to(answered(tickets::show::<A>)),
        E::TicketUpdate => r.to(answered(tickets::change::<A>)),
        E::TicketReply => r.to(answered(tickets::reply::<A>)),
        E::TicketAttachment => r.to(answered(tickets::attachment::<A>)),
    }
}

fn method_not_allowed(req: &HttpRequest, allow: String) -> HttpResponse {
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
