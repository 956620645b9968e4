//! The OpenAPI 3.1 document of the eleven documented endpoints, generated
//! with utoipa from the declarations below (served at `/openapi.json`, and
//! browsable at `/docs` with a vendored Swagger UI: no CDN, works offline).
//!
//! The handlers read an input bag and validate it with Laravel's rules, so
//! the request types here exist for the document: each mirrors the rules of
//! its handler (see `routes/`), with the documentation's examples.

#![allow(dead_code)]

use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `{"message": "Credenciales de consumo inválidas"}`
#[derive(ToSchema)]
#[schema(example = json!({"message": "Credenciales de consumo inválidas"}))]
struct InvalidConsumer {
    message: String,
}

/// Laravel's validation failure.
#[derive(ToSchema)]
#[schema(example = json!({"message": "The product field is required.", "errors": {"product": ["The product field is required."]}}))]
struct ValidationFailure {
    message: String,
    errors: std::collections::BTreeMap<String, Vec<String>>,
}

/// The envelope of every answer but `correo/save`'s.
#[derive(ToSchema)]
struct Envelope {
    data: Value,
    /// `ok` or `error`.
    status: String,
    message: String,
    /// The HTTP status.
    code: i64,
    /// The bitácora record of this request (a string for `SSO/access` and
    /// `SSO/refreshUserToken`, an integer elsewhere).
    id_bitacora_log: Value,
}

#[derive(ToSchema)]
#[schema(example = json!({"product": "evktzdcpbcfbd", "email": "maegan64@example.net"}))]
struct ForgotRequest {
    /// max 100 characters
    product: String,
    /// an e-mail address, max 191 characters
    email: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"product": "jlwnplitvwegmkx", "id": "tnybdlsbjefhjjgzbeab", "token": "oqjtxwdrlmobdv", "password": "}yf,FS<${nB)4s]]S", "password_confirmation": "oucmyx"}))]
struct ResetRequest {
    product: String,
    id: String,
    token: String,
    password: String,
    password_confirmation: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"id_cuenta_correo": 1, "user": "dnunez@cyberfuel.com", "departamento": 1, "estado": "activo"}))]
struct MailAccountsRequest {
    id_cuenta_correo: Option<i64>,
    user: Option<String>,
    departamento: Option<i64>,
    /// `activo` or `inactivo`
    estado: Option<String>,
}

#[derive(ToSchema)]
struct Attachment {
    name: String,
    /// relative to the channel's storage; no absolute paths, no `..`
    route: String,
    #[schema(rename = "type")]
    mime_type: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"sistema": "canal_lectura", "subject": "prueba", "from": "test@cyberfuel.com", "to": "test0@cyberfuel.com", "cc": "test1@cyberfuel.com", "bcc": "test2@cyberfuel.com", "reply_to": "test_reply@cyberfuel.com", "body": "contenido del correo en texto plano.", "html": "<p>Contenido del correo en HTML</p>", "date": "2025-10-10 12:00:00", "headers": {"X-Custom-Header": "Valor", "X-Tracking-ID": "abc123"}, "attachments": [{"name": "error_log.txt", "route": "logs/error_log.txt", "type": "text/plain"}]}))]
struct MailSaveRequest {
    sistema: String,
    subject: Option<String>,
    from: String,
    to: String,
    cc: Option<String>,
    bcc: Option<String>,
    reply_to: Option<String>,
    body: Option<String>,
    html: Option<String>,
    /// `Y-m-d H:i:s`
    date: String,
    headers: Option<std::collections::BTreeMap<String, String>>,
    attachments: Option<Vec<Attachment>>,
}

#[derive(ToSchema)]
#[schema(example = json!({"success": true, "message": "Se ha creado el ticket 132", "ticket": "132", "id_detalle_ticket": "1234", "notificacion_SLA_Synology": "Enviada a canal xxxx", "notificacion_SLA_Correo": "No emitida", "id_departamento_asignado": "1", "id_usuario_asignado": "1"}))]
struct MailSaveAnswer {
    success: bool,
    message: String,
    ticket: String,
    id_detalle_ticket: String,
    #[schema(rename = "notificacion_SLA_Synology")]
    notificacion_sla_synology: String,
    #[schema(rename = "notificacion_SLA_Correo")]
    notificacion_sla_correo: String,
    id_departamento_asignado: String,
    id_usuario_asignado: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"sistema": "factura_profesional", "estado": "activo", "update_token": "S"}))]
struct SetTokenRequest {
    sistema: String,
    estado: Option<String>,
    /// `S` or `N`
    update_token: Option<String>,
}

#[derive(ToSchema)]
#[schema(example = json!({"username": "dnunez", "email": "dnunez@cyberfuel.com", "sistema": "factura_profesional", "token": "activo"}))]
struct GenerateTokenRequest {
    username: String,
    email: String,
    sistema: String,
    token: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"token": "<base64 generado>"}))]
struct RedeemRequest {
    token: Option<String>,
}

#[derive(ToSchema)]
#[schema(example = json!({"product": "dolores", "user": "et", "password": "Cyberf4231&459", "pin": "zhartkghc", "id_device": 82, "id_bitacora_log": "123456", "usuario": "dnunez@cyberfuel.com", "modo": "normal"}))]
struct AccessRequest {
    product: String,
    user: Option<String>,
    /// required when `modo` is `normal`
    password: Option<String>,
    /// `modo` `pin` only: 4 to 12 digits
    pin: Option<String>,
    /// `modo` `pin` only
    id_device: Option<i64>,
    id_bitacora_log: Option<String>,
    /// login or e-mail
    usuario: String,
    /// `normal` or `pin`
    modo: String,
}

#[derive(ToSchema)]
#[schema(example = json!({"product": "est", "id_bitacora_log": "123456"}))]
struct RefreshRequest {
    product: String,
    id_bitacora_log: Option<String>,
}

#[derive(ToSchema)]
#[schema(example = json!({"user": "jmora", "email": "jmora@cyberfuel.com", "departamento": 1}))]
struct UsersRequest {
    /// required without `email` and `departamento`
    user: Option<String>,
    email: Option<String>,
    departamento: Option<i64>,
}

#[derive(ToSchema)]
#[schema(example = json!({"token": "<string del token>", "user_id": 120, "username": "dnunez", "thread_id": 1, "timestamp": 1752066920406u64, "text": "Hola."}))]
struct BotRequest {
    /// the bot's outgoing token (not consumer headers)
    token: String,
    user_id: i64,
    username: String,
    thread_id: Option<i64>,
    timestamp: Option<i64>,
    text: Option<String>,
}

/// `correo/save`'s errors (other than 401 and 422) keep its flat shape.
#[derive(ToSchema)]
#[schema(example = json!({"success": false, "message": "El cuerpo de la solicitud no es JSON válido."}))]
struct MailSaveError {
    success: bool,
    message: String,
}

macro_rules! documented {
    ($fn:ident, $method:ident, $path:literal, $summary:literal, $body:ty, $ok:ty) => {
        documented!($fn, $method, $path, $summary, $body, $ok, Envelope);
    };
    ($fn:ident, $method:ident, $path:literal, $summary:literal, $body:ty, $ok:ty, $err:ty) => {
        #[utoipa::path(
            $method,
            path = $path,
            summary = $summary,
            request_body = $body,
            security(("consumer" = [], "secret" = [])),
            responses(
                (status = 200, description = "Success", body = $ok),
                (status = 401, description = "Missing, unknown, wrong or disabled consumer", body = InvalidConsumer),
                (status = 403, description = "Consumer not granted this endpoint", body = $err),
                (status = 422, description = "Validation failed (Laravel's shape)", body = ValidationFailure),
                (status = "4XX", description = "Other client errors: malformed JSON, wrong content type, too large, throttled", body = $err),
            )
        )]
        fn $fn() {}
    };
}

documented!(
    forgot,
    post,
    "/api/SSO/password/forgot",
    "Start a password reset (same answer for any address)",
    ForgotRequest,
    Envelope
);
documented!(reset, post, "/api/SSO/password/reset", "Complete a password reset", ResetRequest, Envelope);
documented!(
    mail_accounts,
    post,
    "/api/correo/getConfigCorreos",
    "Mailboxes of the mail-reading channel",
    MailAccountsRequest,
    Envelope
);
documented!(
    mail_save,
    post,
    "/api/correo/save",
    "An incoming e-mail becomes a ticket (flat answer)",
    MailSaveRequest,
    MailSaveAnswer,
    MailSaveError
);
documented!(
    set_token,
    post,
    "/api/SSO/ADI/setToken",
    "Register an integrated system or rotate its token",
    SetTokenRequest,
    Envelope
);
documented!(
    generate_token,
    post,
    "/api/SSO/ADI/generateToken",
    "A single-use login ticket for a user",
    GenerateTokenRequest,
    Envelope
);
documented!(redeem, post, "/api/SSO/ADI/Token", "Redeem a login ticket (once)", RedeemRequest, Envelope);
documented!(access, post, "/api/SSO/access", "Log in by password or device PIN", AccessRequest, Envelope);
documented!(
    refresh,
    get,
    "/api/SSO/refreshUserToken",
    "Exchange a user token (Authorization: Bearer) for a new one",
    RefreshRequest,
    Envelope
);
documented!(
    users,
    post,
    "/api/UsuarioInterno/get",
    "Internal users by user, e-mail or department",
    UsersRequest,
    Envelope
);

#[utoipa::path(
    post,
    path = "/api/Synology/BotAsistencia/configurarIdUsuario",
    summary = "Synology Chat bot webhook: link a Synology user (form or JSON; HEAD answers the probe)",
    request_body(content = BotRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Linked; Synology's answer under data.synology_response", body = Envelope),
        (status = 401, description = "Wrong or missing bot token", body = Envelope),
        (status = 404, description = "Unknown username", body = Envelope),
        (status = 422, description = "Validation failed", body = ValidationFailure),
    )
)]
fn bot() {}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "consumer",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-User-Consumo"))),
        );
        components
            .add_security_scheme("secret", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-User-Secret"))));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "API de Atención de Incidencias",
        description = "Drop-in reimplementation of the Cyberfuel helpdesk API. Consumer credentials go in X-User-Consumo and X-User-Secret; each consumer is granted only the endpoints it was issued for.",
        version = "1.0.0"
    ),
    paths(forgot, reset, mail_accounts, mail_save, set_token, generate_token, redeem, access, refresh, users, bot),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
