//! The browser's side of a console session: the cookies, the CSRF token
//! every state-changing form carries, and the Origin check.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use helpdesk_domain::crypto::random_token;

/// The session key (`HttpOnly`, `SameSite=Strict`, `Secure` behind https).
pub const SESSION_COOKIE: &str = "consola_sesion";
/// The sign-in form's own CSRF token (double submit: cookie and field), as
/// there is no session yet to hold one.
pub const SIGN_IN_COOKIE: &str = "consola_entrada";
/// The name of the CSRF field of every form.
pub const CSRF_FIELD: &str = "csrf";

/// Where the console lives and whether its cookies are `Secure`.
#[derive(Debug, Clone)]
pub struct Site {
    /// `https://mesa.example.com` (`server.public_url`'s origin).
    pub origin: String,
    pub secure: bool,
}

impl Site {
    pub fn new(public_url: &url::Url) -> Self {
        Site { origin: public_url.origin().ascii_serialization(), secure: public_url.scheme() == "https" }
    }

    /// A cookie of the console's: scoped to `/consola`, never readable by
    /// scripts, never sent by another site's request.
    pub fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/consola")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .finish()
    }

    /// The cookie `name`, expired.
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut c = self.cookie(name, String::new());
        c.make_removal();
        c
    }

    /// A state-changing request must come from the console's own pages:
    /// an `Origin` header, when the browser sends one (they all do on a
    /// POST), is the public origin or the origin the request was made to.
    pub fn same_origin(&self, req: &HttpRequest) -> bool {
        let Some(origin) = req.headers().get("origin").and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let info = req.connection_info();
        let own = format!("{}://{}", info.scheme(), info.host());
        origin == self.origin || origin.eq_ignore_ascii_case(&own)
    }
}

/// The session key the browser sent.
pub fn session_key(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string())
}

/// A fresh token for the sign-in form.
pub fn new_sign_in_token() -> String {
    random_token(43)
}

/// Whether the form's token is the expected one (in constant time).
pub fn token_matches(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The sign-in cookie's token, when the browser sent it.
pub fn sign_in_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd") && !token_matches("abc", "ab") && !token_matches("", ""));
    }

    #[test]
    fn cookies_are_strict_http_only_and_secure_behind_https() {
        let site = Site::new(&"https://mesa.example.com/".parse().unwrap());
        let c = site.cookie(SESSION_COOKIE, "k".into());
        assert_eq!(
            (c.http_only(), c.same_site(), c.secure(), c.path()),
            (Some(true), Some(SameSite::Strict), Some(true), Some("/consola"))
        );
        assert_eq!(site.origin, "https://mesa.example.com");
        let plain = Site::new(&"http://127.0.0.1:8080".parse().unwrap());
        assert_eq!(plain.cookie(SESSION_COOKIE, "k".into()).secure(), Some(false));
    }
}
