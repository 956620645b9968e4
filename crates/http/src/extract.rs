//! Typed input for every endpoint.
//!
//! Each endpoint declares one request struct (`#[derive(Deserialize,
//! ToSchema)]`) in its `routes/` file and implements [`ApiRequest`] for it:
//! the endpoint it belongs to, who may call it, the body encodings it takes
//! and its Laravel rules. That one declaration is the handler's input, the
//! OpenAPI schema ([`crate::openapi`]) and the validation; a test checks
//! that rules and schema name the same fields.
//!
//! [`Valid<R, A>`] is the actix extractor: it admits the caller (consumer
//! credentials, or the bot's token), reads the input bag, validates it and
//! deserializes `R`, in that order, so a caller without credentials learns
//! nothing about the fields. [`answered`] wraps a handler returning
//! `Result<Reply, ApiError>` so that both its answers and its errors are
//! rendered in the endpoint's envelope with the request's bitácora id.

use std::future::Future;
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, Handler, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use helpdesk_domain::model::{Consumer, Endpoint};
use helpdesk_domain::ports::Adapters;
use helpdesk_domain::services::{AccessError, Operator, SsoError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::AppState;
use crate::audit::AuditCtx;
use crate::envelope::{Reply, render};
use crate::error::ApiError;
use crate::request::{Accept, RawBody, bearer, header, input};
use crate::route::Gate;
use crate::route::route;
use crate::validation::{Field, validate};

/// An endpoint's request: its rules, and where it belongs.
pub trait ApiRequest: DeserializeOwned + utoipa::ToSchema + 'static {
    const ENDPOINT: Endpoint;
    const ACCEPT: Accept = Accept::Json;

    /// The fields' rules, in the order Laravel reports them.
    fn rules() -> Vec<Field>;

    /// Rules for the members of list fields (`attachments.*.name`).
    fn item_rules() -> Vec<(&'static str, Vec<Field>)> {
        Vec::new()
    }
}

/// A request admitted and validated: the typed input and who sent it.
pub struct Valid<R, A> {
    pub input: R,
    /// The authenticated consumer; `None` behind [`Gate::BotToken`].
    pub consumer: Option<Consumer>,
    /// The operator behind [`Gate::Operator`].
    pub operator: Option<Operator>,
    _adapters: PhantomData<fn() -> A>,
}

impl<R: ApiRequest, A: Adapters> FromRequest for Valid<R, A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            req.extensions_mut().insert(R::ENDPOINT);
            admit::<R, A>(&req).await.map_err(|e| {
                let response = render(Some(R::ENDPOINT), AuditCtx::of(&req).id, Err(e));
                InternalError::from_response("request refused", response).into()
            })
        })
    }
}

async fn admit<R: ApiRequest, A: Adapters>(req: &HttpRequest) -> Result<Valid<R, A>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState<A>>>()
        .ok_or_else(|| ApiError::internal("the application state is missing"))?;
    let gate = route(R::ENDPOINT).gate;
    let consumer = match gate {
        Gate::Consumer | Gate::Operator => {
            let consumer = consumer(state, req, R::ENDPOINT).await?;
            AuditCtx::of(req).set_consumer(consumer.id);
            Some(consumer)
        }
        Gate::BotToken => None,
    };
    let operator = match gate {
        Gate::Operator => {
            let token = bearer(req).ok_or(SsoError::InvalidToken)?;
            let user = state.sso.authenticate(&token).await?;
            AuditCtx::of(req).set_user(user.id);
            Some(Operator::new(user)?)
        }
        _ => None,
    };
    let mut bag = input(req, RawBody::take(req)?, R::ACCEPT)?;
    // The route's own parameters (`{id}`) are fields too, validated with
    // the others; they win over a body field of the same name.
    for (name, value) in req.match_info().iter() {
        bag.insert(name.to_string(), Value::String(value.to_string()));
    }
    if gate == Gate::BotToken {
        // A token in the URL ends up in proxy and access logs: refused
        // before anything else, even a right one. Then the token, before
        // the fields: a caller without it learns nothing.
        if token_in_query(req.query_string()) {
            return Err(ApiError::BadRequest(crate::messages::BOT_TOKEN_IN_URL.into()));
        }
        state.bot.check_token(bag.get("token").and_then(Value::as_str))?;
    }
    validate(&bag, &R::rules(), &R::item_rules()).map_err(ApiError::Validation)?;
    let input = typed::<R>(bag)?;
    Ok(Valid { input, consumer, operator, _adapters: PhantomData })
}

async fn consumer<A: Adapters>(
    state: &AppState<A>,
    req: &HttpRequest,
    endpoint: Endpoint,
) -> Result<Consumer, ApiError> {
    let found = state.access.authorize(header(req, "X-User-Consumo"), header(req, "X-User-Secret"), endpoint).await;
    if let Err(AccessError::Forbidden { .. }) = &found {
        tracing::warn!(endpoint = %endpoint, "consumer outside its grants");
    }
    Ok(found?)
}

/// The validated bag as `R`. The deserializers of [`de`] accept any value,
/// and every field the struct requires has a `required` rule (checked by a
/// test), so this fails only on a mistake of ours.
fn typed<R: ApiRequest>(bag: Map<String, Value>) -> Result<R, ApiError> {
    serde_json::from_value(Value::Object(bag))
        .map_err(|e| ApiError::internal_by(format!("validated input does not fit {}", R::ENDPOINT), e))
}

/// Whether the query string carries the token (or any other secret), by
/// normalised name (`token`, `Token`, `token[]`).
fn token_in_query(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| helpdesk_domain::services::is_secret_key(&k))
}

/// Wraps a handler so that its result is rendered in the envelope of the
/// endpoint its [`Valid`] input declared, with the request's bitácora id.
pub fn answered<F, Args>(handler: F) -> impl Handler<(HttpRequest, Args), Output = HttpResponse>
where
    F: Handler<Args, Output = Result<Reply, ApiError>>,
    Args: FromRequest + 'static,
{
    move |req: HttpRequest, args: Args| {
        let answer = handler.call(args);
        rendered(req, answer)
    }
}

async fn rendered(req: HttpRequest, answer: impl Future<Output = Result<Reply, ApiError>>) -> HttpResponse {
    let result = answer.await;
    let endpoint = req.extensions().get::<Endpoint>().copied();
    render(endpoint, AuditCtx::of(&req).id, result)
}

/// Field deserializers with the leniency of PHP's request bag. None of them
/// fails: the rules have already said what is acceptable.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::{Map, Value};

    /// Text as sent: a string as is, a number as its digits, else empty.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        })
    }

    /// Text trimmed; `None` when absent, blank or not a string (Laravel's
    /// "absent").
    pub fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
    }

    /// Text trimmed (a required field), empty if it somehow is not text.
    pub fn trimmed_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(trimmed(d)?.unwrap_or_default())
    }

    /// Text as sent (untrimmed; a number as its digits), `None` when
    /// absent or blank.
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) if !s.trim().is_empty() => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    /// An integer as Laravel's `integer` rule accepts it (a number or a
    /// string of digits); `None` otherwise.
    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(crate::validation::as_integer(&Value::deserialize(d)?))
    }

    /// A required integer (its rules passed): 0 if it somehow is not one.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Ok(opt_int(d)?.unwrap_or_default())
    }

    /// A boolean as the `boolean` rule accepts it; false otherwise.
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(crate::validation::as_boolean(&Value::deserialize(d)?).unwrap_or(false))
    }

    /// A JSON object, `None` when absent or anything else.
    pub fn opt_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Map<String, Value>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Object(m) => Some(m),
            _ => None,
        })
    }

    /// A list of `T`, empty when absent or not a list.
    pub fn list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(items) => {
                items.into_iter().map(|i| serde_json::from_value(i).map_err(serde::de::Error::custom)).collect()
            }
            _ => Ok(Vec::new()),
        }
    }
}
