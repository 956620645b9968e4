//! "¿Olvidó su contraseña?": the console starts the SSO's reset and serves
//! the page its e-mail links to (`/consola/restablecer`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{ConsoleError, SsoError};

use crate::WebState;
use crate::assets::{self, Scripts, Served};
use crate::audit::audited;
use crate::pages::{form_token_ok, with_form_token};
use crate::render::{failed, fields, html, message, params, see_other};
use crate::session;
use crate::texts::{T, Texts};

#[derive(Template)]
#[template(path = "olvido.html")]
struct ForgotPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    csrf: &'a str,
    message: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "restablecer.html")]
struct ResetPage<'a> {
    t: &'static Texts,
    css: &'static Served,
    js: &'static Scripts,
    csrf: &'a str,
    id: &'a str,
    token: &'a str,
    message: Option<&'a str>,
}

fn forgot_page<A: Adapters>(state: &WebState<A>, message: Option<&'static str>) -> HttpResponse {
    let token = session::new_sign_in_token();
    let page = ForgotPage { t: &T, css: assets::css(), js: assets::js(), csrf: &token, message };
    with_form_token(state, html(StatusCode::OK, &page), token)
}

fn reset_page<A: Adapters>(
    state: &WebState<A>,
    status: StatusCode,
    id: &str,
    token: &str,
    message: Option<&str>,
) -> HttpResponse {
    let csrf = session::new_sign_in_token();
    let page = ResetPage { t: &T, css: assets::css(), js: assets::js(), csrf: &csrf, id, token, message };
    with_form_token(state, html(status, &page), csrf)
}

/// `GET /consola/olvido`.
pub async fn forgot_form<A: Adapters>(state: web::Data<WebState<A>>) -> HttpResponse {
    forgot_page(&state, None)
}

/// `POST /consola/olvido`: the same answer whatever the address; the mail
/// is sent after the answer (its time says nothing either).
pub async fn forgot<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, async {
        let form = fields(&body);
        if !form_token_ok(&state, &req, &form) {
            return message(StatusCode::FORBIDDEN, T.forbidden_title, T.forbidden);
        }
        let email = form.get("correo").map(|e| e.trim().to_string()).unwrap_or_default();
        if !email.is_empty() {
            let state = state.clone();
            let mailer = state.mailer.clone();
            state.tasks.clone().spawn(async move {
                if let Err(e) = state.console.forgot(mailer.as_ref(), &email).await {
                    tracing::error!(error = %helpdesk_domain::Report(&e), "console password reset e-mail not sent");
                }
            });
        }
        forgot_page(&state, Some(T.link_sent))
    })
    .await
}

/// `GET /consola/restablecer?id=..&token=..` (the e-mail's link).
pub async fn reset_form<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest) -> HttpResponse {
    let p = params(&req);
    let (id, token) = (p.get("id").cloned().unwrap_or_default(), p.get("token").cloned().unwrap_or_default());
    reset_page(&state, StatusCode::OK, &id, &token, None)
}

/// `POST /consola/restablecer`: the new password, twice; then to sign in.
pub async fn reset<A: Adapters>(state: web::Data<WebState<A>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    audited(&state, &req, &body, async {
        let form = fields(&body);
        if !form_token_ok(&state, &req, &form) {
            return message(StatusCode::FORBIDDEN, T.forbidden_title, T.forbidden);
        }
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let (id, token, password) = (get("id"), get("token"), get("contrasena"));
        if password != get("contrasena_repetida") {
            return reset_page(&state, StatusCode::UNPROCESSABLE_ENTITY, &id, &token, Some(T.passwords_differ));
        }
        match state.console.reset(&id, &token, &password).await {
            Ok(()) => see_other("/consola/entrar?clave=1"),
            Err(ConsoleError::Sso(SsoError::PasswordPolicy(why))) => {
                reset_page(&state, StatusCode::UNPROCESSABLE_ENTITY, &id, &token, Some(&why))
            }
            Err(ConsoleError::Sso(SsoError::InvalidResetToken | SsoError::UnknownProduct)) => {
                reset_page(&state, StatusCode::UNPROCESSABLE_ENTITY, &id, &token, Some(T.reset_invalid))
            }
            Err(ConsoleError::Sso(SsoError::NoProductAccess)) => {
                message(StatusCode::FORBIDDEN, T.forbidden_title, T.no_access)
            }
            Err(e) => failed(&e),
        }
    })
    .await
}
