//! The OpenAPI 3.1 document of the eleven documented endpoints, generated
//! with utoipa from the declarations below (served at `/openapi.json`, and
//! browsable at `/docs` with a vendored Swagger UI: no CDN, works offline).
//!
//! The request bodies are the handlers' own request types (see
//! [`crate::extract`]): one declaration per endpoint. The answer types below
//! exist only for the document.

use helpdesk_domain::model::Endpoint;
use serde_json::Value;

use crate::route::route;

use crate::routes::adi::{GenerateTokenRequest, RedeemRequest, SetTokenRequest};
use crate::routes::bot::BotRequest;
use crate::routes::mail::{MailAccountsQuery, MailSaveRequest};
use crate::routes::sso::{AccessRequest, ForgotRequest, RefreshRequest, ResetRequest};
use crate::routes::tickets::{ChangeBody, ReplyBody, TicketListQuery};
use crate::routes::users::UsersQuery;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// `{"message": "Credenciales de consumo inválidas"}`
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"message": "Credenciales de consumo inválidas"}))]
struct InvalidConsumer {
    message: String,
}

/// Laravel's validation failure.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"message": "The product field is required.", "errors": {"product": ["The product field is required."]}}))]
struct ValidationFailure {
    message: String,
    errors: std::collections::BTreeMap<String, Vec<String>>,
}

/// The envelope of every answer but `correo/save`'s.
#[derive(ToSchema)]
#[allow(dead_code)]
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
#[allow(dead_code)]
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

/// `correo/save`'s errors (other than 401 and 422) keep its flat shape.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"success": false, "message": "El cuerpo de la solicitud no es JSON válido."}))]
struct MailSaveError {
    success: bool,
    message: String,
}

macro_rules! documented {
    ($fn:ident, $method:ident, $endpoint:ident, $summary:literal, $body:ty, $ok:ty) => {
        documented!($fn, $method, $endpoint, $summary, $body, $ok, Envelope);
    };
    ($fn:ident, $method:ident, $endpoint:ident, $summary:literal, $body:ty, $ok:ty, $err:ty) => {
        #[utoipa::path(
            $method,
            path = route(Endpoint::$endpoint).path,
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
        #[allow(dead_code)]
        fn $fn() {}
    };
}

documented!(
    forgot,
    post,
    SsoPasswordForgot,
    "Start a password reset (same answer for any address)",
    ForgotRequest,
    Envelope
);
documented!(reset, post, SsoPasswordReset, "Complete a password reset", ResetRequest, Envelope);
documented!(mail_accounts, post, MailAccounts, "Mailboxes of the mail-reading channel", MailAccountsQuery, Envelope);
documented!(
    mail_save,
    post,
    MailSave,
    "An incoming e-mail becomes a ticket (flat answer)",
    MailSaveRequest,
    MailSaveAnswer,
    MailSaveError
);
documented!(
    set_token,
    post,
    AdiSetToken,
    "Register an integrated system or rotate its token",
    SetTokenRequest,
    Envelope
);
documented!(
    generate_token,
    post,
    AdiGenerateToken,
    "A single-use login ticket for a user",
    GenerateTokenRequest,
    Envelope
);
documented!(redeem, post, AdiToken, "Redeem a login ticket (once)", RedeemRequest, Envelope);
documented!(access, post, SsoAccess, "Log in by password or device PIN", AccessRequest, Envelope);
documented!(
    refresh,
    get,
    SsoRefreshUserToken,
    "Exchange a user token (Authorization: Bearer) for a new one",
    RefreshRequest,
    Envelope
);
documented!(users, post, InternalUsers, "Internal users by user, e-mail or department", UsersQuery, Envelope);

#[utoipa::path(
    post,
    path = route(Endpoint::SynologyBot).path,
    summary = "Synology Chat bot webhook: link a Synology user (form or JSON; HEAD answers the probe)",
    request_body(content = BotRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Linked; Synology's answer under data.synology_response", body = Envelope),
        (status = 401, description = "Wrong or missing bot token", body = Envelope),
        (status = 404, description = "Unknown username", body = Envelope),
        (status = 422, description = "Validation failed", body = ValidationFailure),
    )
)]
#[allow(dead_code)]
fn bot() {}

macro_rules! ticket_api {
    ($fn:ident, $method:ident, $endpoint:ident, $summary:literal, [$($param:tt)*], $($body:tt)*) => {
        #[utoipa::path(
            $method,
            path = route(Endpoint::$endpoint).path,
            summary = $summary,
            params($($param)*),
            $($body)*
            security(("consumer" = [], "secret" = [], "operator" = [])),
            responses(
                (status = 200, description = "Success (201 for a reply: id_detalle_ticket and message_id)", body = Envelope),
                (status = 201, description = "Reply or note stored", body = Envelope),
                (status = 401, description = "Bad consumer credentials ({message}) or a missing, expired or revoked user token (envelope)", body = Value),
                (status = 403, description = "Consumer not granted this endpoint, or the user works no tickets", body = Envelope),
                (status = 404, description = "No such ticket (or another department's), or attachment", body = Envelope),
                (status = 409, description = "The ticket changed meanwhile", body = Envelope),
                (status = 422, description = "Validation failed (Laravel's shape)", body = ValidationFailure),
                (status = "4XX", description = "Other client errors", body = Envelope),
            )
        )]
        #[allow(dead_code)]
        fn $fn() {}
    };
}

ticket_api!(
    tickets_list,
    get,
    TicketList,
    "Tickets the operator may see, newest first (keyset pages: `siguiente`)",
    [TicketListQuery],
);
ticket_api!(
    ticket_show,
    get,
    TicketShow,
    "A ticket with its messages, attachments' metadata, events and participants",
    [("id" = i64, Path, description = "the ticket")],
);
ticket_api!(
    ticket_reply,
    post,
    TicketReply,
    "A public reply (mailed once to the requester, participants in Cc) or an internal note",
    [("id" = i64, Path, description = "the ticket")],
    request_body = ReplyBody,
);
ticket_api!(
    ticket_change,
    patch,
    TicketUpdate,
    "Change status, assignee, department or priority (each change is a thread event)",
    [("id" = i64, Path, description = "the ticket")],
    request_body = ChangeBody,
);
ticket_api!(
    ticket_attachment,
    get,
    TicketAttachment,
    "An attachment's file (its type, Content-Disposition: attachment)",
    [("id" = i64, Path, description = "the ticket"), ("id_adjunto" = i64, Path, description = "the attachment")],
);

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
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(utoipa::openapi::security::Http::new(
                utoipa::openapi::security::HttpAuthScheme::Bearer,
            )),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "API de Atención de Incidencias",
        description = "Drop-in reimplementation of the Cyberfuel helpdesk API. Consumer credentials go in X-User-Consumo and X-User-Secret; each consumer is granted only the endpoints it was issued for.",
        version = "1.0.0"
    ),
    paths(
        forgot,
        reset,
        mail_accounts,
        mail_save,
        set_token,
        generate_token,
        redeem,
        access,
        refresh,
        users,
        bot,
        tickets_list,
        ticket_show,
        ticket_reply,
        ticket_change,
        ticket_attachment
    ),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ArrayItems, Schema};

    use super::*;
    use crate::extract::ApiRequest;
    use crate::validation::Rule;

    fn object(schema: RefOr<Schema>) -> utoipa::openapi::schema::Object {
        match schema {
            RefOr::T(Schema::Object(o)) => o,
            other => panic!("not an inline object schema: {}", serde_json::to_string(&other).unwrap_or_default()),
        }
    }

    /// Property names, and the required ones.
    fn fields(o: &utoipa::openapi::schema::Object) -> (BTreeSet<String>, BTreeSet<String>) {
        (o.properties.keys().cloned().collect(), o.required.iter().cloned().collect())
    }

    /// A field the struct requires must have an unconditional `required`
    /// rule (else a valid request could fail to deserialize), and one
    /// with such a rule is required in the document.
    fn unconditionally_required(rules: &[Rule]) -> bool {
        rules.iter().any(|r| matches!(r, Rule::Required)) && !rules.iter().any(|r| matches!(r, Rule::ExcludeUnless(..)))
    }

    fn check<R: ApiRequest>() {
        let doc = object(R::schema());
        let (props, required) = fields(&doc);
        let rules = R::rules();
        let ruled: BTreeSet<String> = rules.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(props, ruled, "{}: the schema's fields and the rules' fields differ", R::ENDPOINT);
        let must: BTreeSet<String> =
            rules.iter().filter(|f| unconditionally_required(&f.rules)).map(|f| f.name.to_string()).collect();
        // Fields deserialized with a default may be required by their rules
        // (the token of the bot is checked by its gate) but never the reverse.
        assert!(required.is_subset(&must), "{}: required in the schema {required:?}, by rule {must:?}", R::ENDPOINT);
        for (list, item_rules) in R::item_rules() {
            let RefOr::T(Schema::Array(array)) = doc.properties[list].clone() else {
                panic!("{}: {list} is not an array in the schema", R::ENDPOINT)
            };
            let ArrayItems::RefOrSchema(item) = array.items else { panic!("{list}: no item schema") };
            let item = match *item {
                RefOr::Ref(r) => {
                    let mut named = Vec::new();
                    R::schemas(&mut named);
                    let name = r.ref_location.rsplit('/').next().unwrap_or_default().to_string();
                    let found = named.into_iter().find(|(n, _)| *n == name);
                    object(found.unwrap_or_else(|| panic!("{list}: {name} not among the schemas")).1)
                }
                inline => object(inline),
            };
            let (item_props, item_required) = fields(&item);
            let item_ruled: BTreeSet<String> = item_rules.iter().map(|f| f.name.to_string()).collect();
            assert_eq!(item_props, item_ruled, "{}: {list} items", R::ENDPOINT);
            assert_eq!(item_required, item_ruled, "{}: every {list} item field is required", R::ENDPOINT);
        }
    }

    #[test]
    fn each_request_type_is_its_rules_and_its_schema() {
        check::<AccessRequest>();
        check::<RefreshRequest>();
        check::<ForgotRequest>();
        check::<ResetRequest>();
        check::<SetTokenRequest>();
        check::<GenerateTokenRequest>();
        check::<RedeemRequest>();
        check::<UsersQuery>();
        check::<MailAccountsQuery>();
        check::<MailSaveRequest>();
        check::<BotRequest>();
        check::<TicketListQuery>();
        check::<crate::routes::tickets::TicketPath>();
        check::<ReplyBody>();
        check::<ChangeBody>();
        check::<crate::routes::tickets::AttachmentPath>();
    }

    #[test]
    fn the_document_names_every_endpoint_with_its_request_schema() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 11 + 4, "the documented eleven and the ticket API's four paths");
        // Each route of the table is described once, under its method, and
        // nothing else is.
        let described: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(|m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> =
            crate::route::routes().map(|r| (r.verb.as_str().to_string(), r.path.to_string())).collect();
        assert_eq!(described, served);
        let save = &paths["/api/correo/save"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let save = serde_json::to_string(save).unwrap();
        assert!(save.contains("MailSaveRequest"), "{save}");
    }
}
