//! The route table: each endpoint's method, path, gate and cache policy,
//! said once. The router ([`crate::routes::configure`]), the admission of a
//! request ([`crate::extract`]), the security headers
//! ([`crate::security`]), the metrics' labels and the OpenAPI document
//! ([`crate::openapi`]) all read it; a consumer's grant is the domain's
//! [`Endpoint`], whose stored name a test checks against this table.
//!
//! A new endpoint: a variant of [`Endpoint`] (the match below then fails
//! to compile until it has a row), its request type in `routes/`, its
//! handler in [`crate::routes`]' match and its operation in `openapi.rs`
//! (the tests fail until both exist).

use actix_web::http::Method;
use helpdesk_domain::model::Endpoint;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `X-User-Consumo` / `X-User-Secret`, granted this endpoint.
    Consumer,
    /// The Synology bot's outgoing token, in the body (never in the URL).
    BotToken,
    /// Consumer credentials, then an operator's user token
    /// (`Authorization: Bearer`, from `SSO/access`): the ticket API.
    Operator,
}

/// What a cache may keep of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Tokens, passwords, secrets: `no-store` (and `Pragma: no-cache`).
    NoStore,
    /// Customers' messages and files: `private, no-store`.
    Private,
    /// Laravel's default for the other documented answers: `no-cache, private`.
    Revalidate,
}

impl Cache {
    /// The `Cache-Control` value.
    pub fn header(self) -> &'static str {
        match self {
            Cache::NoStore => "no-store",
            Cache::Private => "private, no-store",
            Cache::Revalidate => "no-cache, private",
        }
    }
}

/// The methods the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Patch,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
        }
    }
}

/// One endpoint as HTTP serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub verb: Verb,
    /// The full path; `{name}` is a numeric path parameter.
    pub path: &'static str,
    pub gate: Gate,
    pub cache: Cache,
    /// `HEAD` answers the bot platform's probe of its webhook URL.
    pub head_probe: bool,
}

const fn documented(endpoint: Endpoint, verb: Verb, path: &'static str, cache: Cache) -> Route {
    Route { endpoint, verb, path, gate: Gate::Consumer, cache, head_probe: false }
}

const fn ticket_api(endpoint: Endpoint, verb: Verb, path: &'static str) -> Route {
    Route { endpoint, verb, path, gate: Gate::Operator, cache: Cache::Private, head_probe: false }
}

/// The table. The match is exhaustive: an endpoint without a row does not
/// compile.
pub const fn route(endpoint: Endpoint) -> Route {
    use Cache::*;
    use Endpoint as E;
    use Verb::*;
    match endpoint {
        E::SsoAccess => documented(endpoint, Post, "/api/SSO/access", NoStore),
        E::SsoRefreshUserToken => documented(endpoint, Get, "/api/SSO/refreshUserToken", NoStore),
        E::SsoPasswordForgot => documented(endpoint, Post, "/api/SSO/password/forgot", Revalidate),
        E::SsoPasswordReset => documented(endpoint, Post, "/api/SSO/password/reset", Revalidate),
        E::AdiSetToken => documented(endpoint, Post, "/api/SSO/ADI/setToken", NoStore),
        E::AdiGenerateToken => documented(endpoint, Post, "/api/SSO/ADI/generateToken", NoStore),
        E::AdiToken => documented(endpoint, Post, "/api/SSO/ADI/Token", NoStore),
        E::MailAccounts => documented(endpoint, Post, "/api/correo/getConfigCorreos", NoStore),
        E::MailSave => documented(endpoint, Post, "/api/correo/save", Revalidate),
        E::InternalUsers => documented(endpoint, Post, "/api/UsuarioInterno/get", Revalidate),
        E::SynologyBot => Route {
            gate: Gate::BotToken,
            head_probe: true,
            ..documented(endpoint, Post, "/api/Synology/BotAsistencia/configurarIdUsuario", Revalidate)
        },
        E::TicketList => ticket_api(endpoint, Get, "/api/tickets"),
        E::TicketShow => ticket_api(endpoint, Get, "/api/tickets/{id}"),
        E::TicketReply => ticket_api(endpoint, Post, "/api/tickets/{id}/respuestas"),
        E::TicketUpdate => ticket_api(endpoint, Patch, "/api/tickets/{id}"),
        E::TicketAttachment => ticket_api(endpoint, Get, "/api/tickets/{id}/adjuntos/{id_adjunto}"),
    }
}

/// Every route, in the order of [`Endpoint::every`].
pub fn routes() -> impl Iterator<Item = Route> {
    Endpoint::every().map(route)
}

/// The distinct paths, in table order, each with its routes.
pub fn by_path() -> Vec<(&'static str, Vec<Route>)> {
    let mut out: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for r in routes() {
        match out.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, rs)) => rs.push(r),
            None => out.push((r.path, vec![r])),
        }
    }
    out
}

impl Route {
    /// The path below `/api/`: the metrics' label of the route.
    pub fn label(&self) -> &'static str {
        self.path.strip_prefix("/api/").unwrap_or(self.path)
    }

    /// The `Allow` list of this route's path.
    pub fn allow(&self) -> String {
        let mut verbs: Vec<&str> = routes().filter(|r| r.path == self.path).map(|r| r.verb.as_str()).collect();
        if self.head_probe {
            verbs.push("HEAD");
        }
        verbs.join(", ")
    }

    /// Whether `path` is this route's (a `{name}` segment matches digits).
    fn matches(&self, path: &str) -> bool {
        let mut template = self.path.split('/');
        let mut given = path.split('/');
        loop {
            match (template.next(), given.next()) {
                (None, None) => return true,
                (Some(t), Some(g)) if t.starts_with('{') => {
                    if g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()) {
                        return false;
                    }
                }
                (Some(t), Some(g)) if t == g => {}
                _ => return false,
            }
        }
    }
}

/// The route serving `path` (any method), if one does.
pub fn find(path: &str) -> Option<Route> {
    routes().find(|r| r.matches(path))
}

/// The grant name the domain stores for an endpoint, as this table would
/// write it: the path below `/api/` for the documented endpoints, the
/// method and the path for the ticket API (whose paths share a template).
#[cfg(test)]
fn grant_name(r: &Route) -> String {
    match r.gate {
        Gate::Operator => format!("{} {}", r.verb.as_str(), r.label()),
        _ => r.label().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn each_endpoint_has_one_route_and_each_route_one_endpoint() {
        let all: Vec<Route> = routes().collect();
        let pairs: BTreeSet<(Verb, &str)> = all.iter().map(|r| (r.verb, r.path)).collect();
        assert_eq!(pairs.len(), all.len(), "two endpoints share a method and path");
        for r in &all {
            assert_eq!(route(r.endpoint).endpoint, r.endpoint);
            assert!(r.path.starts_with("/api/"), "{}", r.path);
            assert_eq!(
                find(r.path.replace("{id}", "12").replace("{id_adjunto}", "3").as_str()).map(|f| f.path),
                Some(r.path)
            );
        }
        // The routes of one path share their gate and cache policy (the
        // headers are chosen by path, before the handler runs).
        for (path, rs) in by_path() {
            assert!(rs.iter().all(|r| r.cache == rs[0].cache && r.gate == rs[0].gate), "{path}");
        }
    }

    #[test]
    fn the_stored_grant_names_are_the_table_s() {
        for r in routes() {
            assert_eq!(grant_name(&r), r.endpoint.path(), "{:?}", r.endpoint);
            assert_eq!(Endpoint::from_path(&grant_name(&r)), Some(r.endpoint));
        }
    }

    #[test]
    fn answers_with_secrets_are_never_stored() {
        let no_store: BTreeSet<Endpoint> = routes().filter(|r| r.cache == Cache::NoStore).map(|r| r.endpoint).collect();
        for e in [
            Endpoint::SsoAccess,
            Endpoint::SsoRefreshUserToken,
            Endpoint::AdiSetToken,
            Endpoint::AdiGenerateToken,
            Endpoint::AdiToken,
            Endpoint::MailAccounts,
        ] {
            assert!(no_store.contains(&e), "{e}");
        }
        assert!(routes().filter(|r| r.gate == Gate::Operator).all(|r| r.cache == Cache::Private));
    }

    #[test]
    fn paths_are_matched_by_template_with_numeric_parameters() {
        assert_eq!(find("/api/tickets/4821").map(|r| r.label()), Some("tickets/{id}"));
        assert_eq!(find("/api/tickets/4821/adjuntos/7").map(|r| r.label()), Some("tickets/{id}/adjuntos/{id_adjunto}"));
        assert_eq!(find("/api/correo/save").map(|r| r.endpoint), Some(Endpoint::MailSave));
        for other in
            ["/api/tickets/abc", "/api/tickets/1/otra", "/api/tickets/1/adjuntos/x", "/api/ticketsx", "/api/tickets/"]
        {
            assert_eq!(find(other), None, "{other}");
        }
        assert_eq!(route(Endpoint::TicketShow).allow(), "GET, PATCH");
        assert_eq!(route(Endpoint::SynologyBot).allow(), "POST, HEAD");
    }
}
