//! The HTTP layer's own protections, in one middleware around every route:
//! who the client is behind trusted proxies, who may read `/metrics` and
//! `/openapi.json`, CORS for `/api/` (Laravel's defaults: any origin), and
//! the response headers (`nosniff`, each route's cache policy from the route
//! table, the `/docs` page's CSP).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use helpdesk_domain::ports::Adapters;
use serde_json::json;

use crate::AppState;
use crate::route::Cache;

/// An address block (`10.0.0.0/8`, `::1`, `2001:db8::/32`); a bare address
/// is a block of one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket
/// reports) are compared as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Which origins a browser page may call `/api/` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any (Laravel's default; the API uses no cookies).
    Any,
    /// Only these (`https://app.example.com`, lower case, no trailing `/`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// From the setting's values: `*` alone, or origins (scheme, host, port).
    pub fn parse(values: &[String]) -> Result<CorsOrigins, String> {
        let values: Vec<&str> = values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).collect();
        if values.contains(&"*") {
            return if values.len() == 1 { Ok(CorsOrigins::Any) } else { Err("`*` must be the only value".into()) };
        }
        let mut list = Vec::new();
        for v in values {
            let url = url::Url::parse(v).map_err(|e| format!("{v:?}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host_str().is_none()
                || url.path() != "/"
                || url.query().is_some()
            {
                return Err(format!("{v:?} is not an origin such as https://app.example.com"));
            }
            list.push(url.origin().ascii_serialization());
        }
        Ok(CorsOrigins::List(list))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`.
    fn allow(&self, origin: Option<&str>) -> Option<String> {
        match self {
            CorsOrigins::Any => Some("*".into()),
            CorsOrigins::List(list) => {
                let origin = url::Url::parse(origin?).ok()?.origin().ascii_serialization();
                list.contains(&origin).then_some(origin)
            }
        }
    }
}

/// The HTTP layer's network policy (`server.*` settings).
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies).
    pub trusted_proxies: Vec<Cidr>,
    /// Clients that may read `/metrics` and `/openapi.json`.
    pub metrics_allow: Vec<Cidr>,
    pub cors_origins: CorsOrigins,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            metrics_allow: vec![Cidr::from_str("127.0.0.0/8").unwrap(), Cidr::from_str("::1").unwrap()],
            cors_origins: CorsOrigins::Any,
        }
    }
}

/// Parses a list of CIDR blocks (a setting); the error names the bad one.
pub fn parse_cidrs(values: &[String]) -> Result<Vec<Cidr>, String> {
    values.iter().filter(|v| !v.trim().is_empty()).map(|v| v.parse()).collect()
}

impl HttpPolicy {
    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted
    /// proxy; then `X-Forwarded-For` is read from the right, skipping trusted
    /// proxies, and the first address that is not one is the client. An entry
    /// that is not an address stops the walk at the last trusted hop (it
    /// cannot be told apart from a forgery). When every hop is trusted, the
    /// left-most is the client.
    pub fn client_addr(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusted(peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    None
}

/// The client's address as the middleware resolved it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn of(req: &HttpRequest) -> Option<IpAddr> {
        match req.extensions().get::<ClientAddr>() {
            Some(ClientAddr(ip)) => *ip,
            None => req.peer_addr().map(|a| canonical(a.ip())),
        }
    }
}

/// The `/docs` page is Swagger UI's static bundle: its own scripts and
/// styles (no inline script at all), images as data: URIs, and
/// `/openapi.json`. The one inline style is the `<style>` of Swagger's logo
/// (an SVG the bundle inserts), allowed by its hash; React's own style
/// properties go through the CSSOM, which the CSP does not govern.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a preflight may ask for.
pub const CORS_METHODS: &str = "GET, POST, PATCH, HEAD, OPTIONS";
pub const CORS_HEADERS: &str = "X-User-Consumo, X-User-Secret, Authorization, Content-Type, Accept, X-Requested-With";
/// Seconds a browser may reuse a preflight's answer.
const CORS_MAX_AGE: &str = "600";

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

pub(crate) async fn security_middleware<A: Adapters>(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let policy: Arc<HttpPolicy> = req
        .app_data::<actix_web::web::Data<AppState<A>>>()
        .map(|s| s.policy.clone())
        .unwrap_or_else(|| Arc::new(HttpPolicy::default()));
    let client = policy.client_addr(req.peer_addr().map(|a| a.ip()), req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    let path = req.path().to_string();
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    let api = is_api(&path);

    let res = if (path == "/metrics" || path == "/openapi.json")
        && !client.is_some_and(|ip| policy.metrics_allow.iter().any(|c| c.contains(ip)))
    {
        tracing::warn!(client = ?client, %path, "refused: client not in server.metrics_allow");
        let res = HttpResponse::Forbidden().json(json!({ "message": "Acceso denegado." }));
        req.into_response(res)
    } else if api
        && req.method() == Method::OPTIONS
        && origin.is_some()
        && req.headers().contains_key("access-control-request-method")
    {
        // A CORS preflight: answered here, before the bitácora (it carries
        // no credentials and reaches no endpoint).
        let res = match policy.cors_origins.allow(origin.as_deref()) {
            Some(allow) => HttpResponse::NoContent()
                .insert_header(("Access-Control-Allow-Origin", allow))
                .insert_header(("Access-Control-Allow-Methods", CORS_METHODS))
                .insert_header(("Access-Control-Allow-Headers", CORS_HEADERS))
                .insert_header(("Access-Control-Max-Age", CORS_MAX_AGE))
                .finish(),
            None => HttpResponse::Forbidden().json(json!({ "message": "Origen no permitido." })),
        };
        req.into_response(res)
    } else {
        next.call(req).await?.map_into_boxed_body()
    };

    let mut res = res;
    let h = res.headers_mut();
    h.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    if api {
        if let Some(allow) = policy.cors_origins.allow(origin.as_deref())
            && let Ok(v) = HeaderValue::from_str(&allow)
        {
            h.insert(HeaderName::from_static("access-control-allow-origin"), v);
        }
        if policy.cors_origins != CorsOrigins::Any {
            h.append(HeaderName::from_static("vary"), HeaderValue::from_static("Origin"));
        }
        // The route's policy (the table's); a path no route serves gets
        // Laravel's default.
        let cache = crate::route::find(&path).map_or(Cache::Revalidate, |r| r.cache);
        h.insert(HeaderName::from_static("cache-control"), HeaderValue::from_static(cache.header()));
        if cache == Cache::NoStore {
            h.insert(HeaderName::from_static("pragma"), HeaderValue::from_static("no-cache"));
        }
    } else if path == "/docs" || path.starts_with("/docs/") {
        h.insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(DOCS_CSP));
        h.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn xff(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for value in v {
            h.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let c: Cidr = "::1".parse().unwrap();
        assert!(c.contains(ip("::1")) && !c.contains(ip("::2")) && !c.contains(ip("127.0.0.1")));
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")) && !c.contains(ip("2001:db9::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::1/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let policy = HttpPolicy { trusted_proxies: cidrs(&["10.0.0.0/8", "127.0.0.1"]), ..HttpPolicy::default() };
        // An untrusted peer: its header is ignored.
        assert_eq!(policy.client_addr(Some(ip("203.0.113.9")), &xff(&["1.2.3.4"])), Some(ip("203.0.113.9")));
        // A trusted peer: the right-most address that is not a proxy.
        let h = xff(&["198.51.100.1, 203.0.113.7, 10.0.0.2"]);
        assert_eq!(policy.client_addr(Some(ip("127.0.0.1")), &h), Some(ip("203.0.113.7")));
        // Several header lines are one list, in order.
        let h = xff(&["198.51.100.1", "203.0.113.7:5555, 10.0.0.2"]);
        assert_eq!(policy.client_addr(Some(ip("127.0.0.1")), &h), Some(ip("203.0.113.7")));
        // Garbage stops the walk at the last trusted hop.
        let h = xff(&["203.0.113.7, garbage, 10.0.0.2"]);
        assert_eq!(policy.client_addr(Some(ip("127.0.0.1")), &h), Some(ip("10.0.0.2")));
        // Every hop trusted: the left-most.
        let h = xff(&["10.1.1.1, 10.0.0.2"]);
        assert_eq!(policy.client_addr(Some(ip("127.0.0.1")), &h), Some(ip("10.1.1.1")));
        // No header: the proxy itself.
        assert_eq!(policy.client_addr(Some(ip("10.9.9.9")), &HeaderMap::new()), Some(ip("10.9.9.9")));
        // Nothing trusted by default.
        let default = HttpPolicy::default();
        assert_eq!(default.client_addr(Some(ip("127.0.0.1")), &xff(&["1.2.3.4"])), Some(ip("127.0.0.1")));
    }

    #[test]
    fn cors_origins_parse_and_match() {
        assert_eq!(CorsOrigins::parse(&["*".into()]).unwrap(), CorsOrigins::Any);
        assert!(CorsOrigins::parse(&["*".into(), "https://a.example".into()]).is_err());
        assert!(CorsOrigins::parse(&["https://a.example/path".into()]).is_err());
        assert!(CorsOrigins::parse(&["ftp://a.example".into()]).is_err());
        let list = CorsOrigins::parse(&["https://App.example/".into(), "http://127.0.0.1:3000".into()]).unwrap();
        assert_eq!(list.allow(Some("https://app.example")).as_deref(), Some("https://app.example"));
        assert_eq!(list.allow(Some("http://127.0.0.1:3000")).as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(list.allow(Some("https://evil.example")), None);
        assert_eq!(list.allow(None), None);
        assert_eq!(CorsOrigins::Any.allow(None).as_deref(), Some("*"));
    }
}
