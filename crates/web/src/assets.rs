//! The console's assets, compiled into the binary and served under
//! fingerprinted names (`consola.<hash>.css`): cached for a year, and a page
//! names them with `integrity=`. No CDN, no build step: the files in
//! `crates/web/assets/` are what is served.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use base64::Engine;
use sha2::{Digest, Sha256, Sha384};

struct Asset {
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        stem: "consola",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/consola.css"),
    },
    // htmx 2.0.11 (npm `htmx.org`, BSD0), as published.
    Asset {
        stem: "htmx",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/htmx-2.0.11.min.js"),
    },
    // The keyboard (no library).
    Asset {
        stem: "consola",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/consola.js"),
    },
];

/// An asset as pages name it.
pub struct Served {
    /// `/consola/static/consola.0123456789abcdef.css`
    pub href: String,
    /// `sha384-...`, for `integrity=`.
    pub integrity: String,
    file: String,
}

fn served() -> &'static [Served] {
    static SERVED: OnceLock<Vec<Served>> = OnceLock::new();
    SERVED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = hex::encode(&Sha256::digest(a.bytes)[..8]);
                let file = format!("{}.{hash}.{}", a.stem, a.ext);
                let integrity =
                    format!("sha384-{}", base64::engine::general_purpose::STANDARD.encode(Sha384::digest(a.bytes)));
                Served { href: format!("/consola/static/{file}"), integrity, file }
            })
            .collect()
    })
}

pub fn css() -> &'static Served {
    &served()[0]
}

/// The scripts every page loads: htmx and the keyboard.
pub struct Scripts {
    pub htmx: &'static Served,
    pub keys: &'static Served,
}

pub fn js() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts { htmx: &served()[1], keys: &served()[2] })
}

/// `GET /consola/static/{file}`: only the current fingerprinted names.
pub async fn serve(file: web::Path<String>) -> HttpResponse {
    match served().iter().position(|s| s.file == *file) {
        Some(i) => HttpResponse::Ok()
            .content_type(ASSETS[i].content_type)
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .body(ASSETS[i].bytes),
        None => HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("No encontrado."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_content() {
        for (a, s) in ASSETS.iter().zip(served()) {
            assert!(
                s.href.ends_with(&format!(".{}", a.ext))
                    && s.href.contains(&hex::encode(&Sha256::digest(a.bytes)[..8]))
            );
            assert!(s.integrity.starts_with("sha384-") && s.integrity.len() == 7 + 64);
        }
        assert_ne!(css().href, js().htmx.href);
        assert_ne!(js().keys.href, js().htmx.href);
    }
}
