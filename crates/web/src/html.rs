//! Customers' HTML, made safe to show: an allow-list ([`ammonia`]) with no
//! scripts, event handlers, styles, forms or frames, no images at all (a
//! remote image is a tracking pixel; the CSP would block it anyway), links
//! only to `http`, `https` and `mailto`, each `rel="noopener noreferrer"`.

use std::sync::OnceLock;

/// The cleaner, built once.
fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.rm_tags(["img"])
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .link_rel(Some("noopener noreferrer"));
        b
    })
}

/// `html` with only what the allow-list keeps.
pub fn clean(html: &str) -> String {
    cleaner().clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markup_comes_out_inert() {
        let hostile = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
            "<svg><script>alert(1)</script></svg>",
            "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
            "<form action=\"https://evil.example\"><input name=p></form>",
            "<p style=\"position:fixed;top:0\">x</p>",
            "<div onclick=\"alert(1)\">x</div>",
            "<img src=\"https://tracker.example/pixel.gif\">",
            "<style>body{display:none}</style>",
            "<object data=\"x.swf\"></object>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        ];
        for h in hostile {
            let out = clean(h).to_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onclick",
                "javascript:",
                "data:",
                "<iframe",
                "<form",
                "<input",
                "<img",
                "style",
                "<svg",
                "<object",
                "tracker",
            ] {
                assert!(!out.contains(bad), "{h} -> {out}");
            }
        }
        let out = clean("<p>Hola <b>mundo</b> <a href=\"https://ejemplo.test/a\">enlace</a></p>");
        assert!(out.contains("<b>mundo</b>") && out.contains("rel=\"noopener noreferrer\""), "{out}");
    }
}
