//! Security hardening of the HTTP layer (issue 16, items 3, 6, 7, 8, 9, 11):
//! redaction whatever the encoding, refused bodies cut, the webhook's token
//! never in the URL, response headers, `/metrics` allow-list, trusted
//! proxies, CORS (and, ignored, a real browser calling from another origin).

use std::io::{Read, Write};
use std::net::TcpListener;

use helpdesk_domain::model::{AuditEntry, Endpoint};
use helpdesk_domain::ports::{AuditRepository, UserRepository};
use helpdesk_notify_synology::testing::FakeSynology;
use serde_json::{Value, json};

use crate::helpers::*;

const USERS: &str = "UsuarioInterno/get";

async fn record(app: &TestApp, body: &Value) -> AuditEntry {
    let id = body["id_bitacora_log"].as_i64().unwrap_or_else(|| panic!("no id in {body}"));
    app.db.find_audit(id).await.unwrap().unwrap()
}

async fn last_record(app: &TestApp) -> AuditEntry {
    app.db.recent_audit(1).await.unwrap().remove(0)
}

/// The database (rows and, on SQLite, the raw files) holds none of `secrets`.
async fn assert_nowhere(app: &TestApp, backend: Backend, secrets: &[&str]) {
    for r in app.db.recent_audit(100).await.unwrap() {
        for s in secrets {
            assert!(!r.body.contains(s), "{s} leaked into the bitácora: {}", r.body);
        }
    }
    if backend == Backend::Sqlite {
        let path = app.settings.database.url.trim_start_matches("sqlite://").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            for s in secrets {
                assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "{s} found in {file}");
            }
        }
    }
}

/// Item 3: JSON posted as a form, `password[]`, `a[password]`, any case, in
/// arrays: never stored; a body that is not what its type says is stored as
/// its size and type only.
async fn passwords_never_reach_the_bitacora_whatever_the_encoding(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let send = |ct: &'static str, body: String| {
        app.client
            .post(format!("{}/api/{USERS}", app.address))
            .header("X-User-Consumo", "crm")
            .header("X-User-Secret", &secret)
            .header("Content-Type", ct)
            .body(body)
            .send()
    };

    // `curl -d '{...}'`: JSON sent as a form.
    let res = send("application/x-www-form-urlencoded", r#"{"usuario": "ana", "password": "Clave-1a"}"#.into())
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 415, "{body}");
    let r = record(&app, &body).await;
    assert!(
        r.body.contains("bytes") && r.body.contains("application/x-www-form-urlencoded"),
        "stored as size and type only: {}",
        r.body
    );

    // A real form with PHP-style names.
    let form = "password[]=Clave-2b&password[]=Clave-2c&a[password]=Clave-3d&Password=Clave-4e&u[0][pin]=99114&user=x";
    let (status, body) = json(send("application/x-www-form-urlencoded", form.into()).await.unwrap()).await;
    assert_eq!(status, 415, "{body}");
    let r = record(&app, &body).await;
    assert!(r.body.contains("[REDACTED]") && r.body.contains("\"user\":\"x\""), "{}", r.body);

    // Another content type: size and type only.
    let (status, body) = json(send("text/plain", "password=Clave-5f".into()).await.unwrap()).await;
    assert_eq!(status, 415, "{body}");
    assert!(record(&app, &body).await.body.contains("text/plain"));

    // JSON, secrets under any case, nested, in arrays, or as JSON in a string.
    let sent = json!({
        "user": "x",
        "Password": "Clave-6g",
        "list": [{"new_password": "Clave-7h"}, [{"PIN": "88223"}]],
        "a": {"access_token": "Clave-8i", "x-user-secret": "Clave-9j"},
        "nota": "{\"password\": \"Clave-0k\"}"
    });
    let (status, body) = json(app.post(USERS, ("crm", &secret), &sent).await).await;
    assert_eq!(status, 200, "{body}");
    let r = record(&app, &body).await;
    assert!(r.body.contains("[REDACTED]") && r.body.contains("\"user\":\"x\""), "{}", r.body);

    let secrets = [
        "Clave-1a", "Clave-2b", "Clave-2c", "Clave-3d", "Clave-4e", "99114", "Clave-5f", "Clave-6g", "Clave-7h",
        "88223", "Clave-8i", "Clave-9j", "Clave-0k",
    ];
    assert_nowhere(&app, backend, &secrets).await;
}

/// Item 6: bodies of requests refused before a handler trusted them are
/// cut to 512 bytes; an accepted request keeps its body as before.
async fn refused_requests_keep_at_most_512_bytes_of_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.consumer("crm", &[Endpoint::InternalUsers]).await;
    let other = app.consumer("otro", &[Endpoint::MailSave]).await;
    let big = json!({"user": "x", "relleno": "r".repeat(100_000)});

    // 401: unknown consumer.
    let (status, body) = json(app.post(USERS, ("intruso", "nada"), &big).await).await;
    assert_eq!(status, 401);
    let r = last_record(&app).await;
    assert_eq!(r.status, Some(401));
    assert!(r.body.len() <= 512 && r.body.len() > 400, "{} bytes kept; {body}", r.body.len());

    // 403: a consumer outside its grants.
    let (status, body) = json(app.post(USERS, ("otro", &other), &big).await).await;
    assert_eq!(status, 403);
    let r = record(&app, &body).await;
    assert!(r.body.len() <= 512, "{} bytes kept", r.body.len());

    // 415: a well-formed form where only JSON is taken.
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("X-User-Consumo", "crm")
        .header("X-User-Secret", &secret)
        .form(&[("user", "x"), ("relleno", &"r".repeat(50_000))])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 415);
    let r = record(&app, &body).await;
    assert!(r.body.len() <= 512, "{} bytes kept", r.body.len());

    // 404: no such route.
    let (status, _) = json(app.post("no/existe", ("intruso", "nada"), &big).await).await;
    assert_eq!(status, 404);
    assert!(last_record(&app).await.body.len() <= 512);

    // 400: the webhook's token in the URL, before the token is checked.
    let res = app
        .client
        .post(format!("{}/api/Synology/BotAsistencia/configurarIdUsuario?token=x", app.address))
        .form(&[("user_id", "1"), ("username", "x"), ("text", &"r".repeat(50_000))])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 400);
    assert!(record(&app, &body).await.body.len() <= 512);

    // 413: over the limit, nothing kept.
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("Content-Type", "application/json")
        .body(format!("{{\"user\": \"{}\"}}", "r".repeat(3 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(last_record(&app).await.body.len() <= 512);

    // Accepted: kept as before (up to 16,384 characters).
    let (status, body) =
        json(app.post(USERS, ("crm", &secret), &json!({"user": "x", "nota": "n".repeat(5000)})).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(record(&app, &body).await.body.len() > 5000);
}

/// Item 7: the webhook's token in the query string is refused, even a right
/// one, and nothing is done; in the body (form or JSON) it works.
async fn the_webhook_refuses_its_token_in_the_query_string(backend: Backend) {
    const TOKEN: &str = "token-saliente-del-bot";
    let fake = FakeSynology::start();
    let base = fake.base_url.clone();
    let app = spawn_app_with(backend, move |s| {
        s.synology.base_url = base;
        s.synology.bot_token = "bot-token".into();
        s.synology.outgoing_token = TOKEN.into();
    })
    .await;
    let user_id = app.user("dmora", "dmora@ejemplo.test", "Clave-Segura-2026").await;
    let url = format!("{}/api/Synology/BotAsistencia/configurarIdUsuario", app.address);
    let fields = [("user_id", "120"), ("username", "dmora"), ("text", "hola")];

    for query in [format!("token={TOKEN}"), format!("Token={TOKEN}"), format!("token%5B%5D={TOKEN}")] {
        let res = app.client.post(format!("{url}?{query}")).form(&fields).send().await.unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains("URL"), "{body}");
        // In the body as well: still refused.
        let mut both = fields.to_vec();
        both.push(("token", TOKEN));
        let res = app.client.post(format!("{url}?{query}")).form(&both).send().await.unwrap();
        assert_eq!(res.status(), 400);
    }
    assert_eq!(app.db.find_user(user_id).await.unwrap().unwrap().synology_id, None);
    assert!(fake.calls().is_empty(), "nothing sent to Synology");

    // As Synology sends it: in the form body.
    let mut form = fields.to_vec();
    form.push(("token", TOKEN));
    let (status, body) = json(app.client.post(&url).form(&form).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.db.find_user(user_id).await.unwrap().unwrap().synology_id, Some(120));
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

/// Item 8 (and 11's caching): nosniff everywhere, no-store on answers with
/// tokens or mailbox passwords, Laravel's `no-cache, private` on the rest of
/// `/api/`, a CSP and `X-Frame-Options` on `/docs`.
async fn response_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let all = app.consumer("todo", &Endpoint::ALL).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();

    for path in ["/health", "/ready", "/metrics", "/openapi.json", "/docs/", "/docs/swagger-ui.css", "/no-existe"] {
        let res = get(path).await.unwrap();
        assert_eq!(header(&res, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    }
    for path in ["/docs/", "/docs/swagger-initializer.js", "/docs"] {
        let res = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        let csp = header(&res, "content-security-policy").unwrap_or_else(|| panic!("no CSP on {path}"));
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header(&res, "x-frame-options").as_deref(), Some("DENY"), "{path}");
    }

    // Tokens: ADI's system token, user tokens, mailbox passwords.
    let res = app.post("SSO/ADI/setToken", ("todo", &all), &json!({"sistema": "facturas", "estado": "activo"})).await;
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    for (path, body) in [
        ("SSO/access", json!({"product": "x", "usuario": "x", "password": "x", "modo": "normal"})),
        ("SSO/ADI/generateToken", json!({"token": "x", "username": "x", "email": "x@x.test"})),
        ("SSO/ADI/Token", json!({"token": "x"})),
        ("correo/getConfigCorreos", json!({})),
    ] {
        let res = app.post(path, ("todo", &all), &body).await;
        assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"), "{path}");
        assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("*"), "{path}");
        assert_eq!(header(&res, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
    }
    let res = app
        .client
        .get(format!("{}/api/SSO/refreshUserToken", app.address))
        .header("X-User-Consumo", "todo")
        .header("X-User-Secret", &all)
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-store"));

    // The rest of /api/: Laravel's headers, refusals included; no CSP there.
    let res = app.post(USERS, ("todo", &all), &json!({"user": "x"})).await;
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-cache, private"));
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(header(&res, "content-security-policy"), None);
    let res = app.post(USERS, ("intruso", "x"), &json!({"user": "x"})).await;
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "cache-control").as_deref(), Some("no-cache, private"));
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("*"));
}

/// The route table is what is served: each route answers a caller without
/// credentials 401 (not 404 or 405) with its table's cache policy, and
/// another method 405 naming the path's methods.
async fn every_route_of_the_table_is_served_as_described(backend: Backend) {
    let app = spawn_app(backend).await;
    for route in helpdesk_http::route::routes() {
        let path = route.path.replace("{id}", "1").replace("{id_adjunto}", "1");
        let url = format!("{}{path}", app.address);
        let method = reqwest::Method::from_bytes(route.verb.as_str().as_bytes()).unwrap();
        let res = app.client.request(method, &url).json(&json!({})).send().await.unwrap();
        assert_eq!(res.status(), 401, "{} {path}", route.verb.as_str());
        assert_eq!(header(&res, "cache-control").as_deref(), Some(route.cache.header()), "{path}");
        let res = app.client.delete(&url).send().await.unwrap();
        assert_eq!(res.status(), 405, "DELETE {path}");
        assert_eq!(header(&res, "allow"), Some(route.allow()), "{path}");
    }
}

/// Item 8: `/metrics` and `/openapi.json` only from `server.metrics_allow`
/// (loopback by default), judged on the client address (item 9).
async fn metrics_and_openapi_only_from_allowed_clients(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/metrics", "/openapi.json"] {
        let res = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path} from loopback");
    }

    let app = spawn_app_with(backend, |s| s.server.metrics_allow = vec!["10.0.0.0/8".into()]).await;
    for path in ["/metrics", "/openapi.json"] {
        let res = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
    let res = app.client.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(format!("{}/docs/", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Behind a trusted proxy on loopback, the forwarded client counts.
    let app = spawn_app_with(backend, |s| s.server.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .header("X-Forwarded-For", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 200, "the proxy host itself");
}

/// Item 9: `X-Forwarded-For` is believed only from a trusted proxy, and
/// then its right-most untrusted address is the client, in the bitácora
/// and in login throttling.
async fn forwarded_for_only_from_trusted_proxies(backend: Backend) {
    // Nothing trusted: the header is ignored.
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("X-Forwarded-For", "203.0.113.7")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(last_record(&app).await.client_ip, "127.0.0.1");

    let app =
        spawn_app_with(backend, |s| s.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()]).await;
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.0.0.2")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(last_record(&app).await.client_ip, "203.0.113.7");

    // Throttling counts per forwarded address: an account locked from one
    // client is still open from another.
    app.product("mesa").await;
    app.user("ana", "ana@ejemplo.test", "Clave-Correcta-2026").await;
    let secret = app.consumer("sso", &[Endpoint::SsoAccess]).await;
    let login = |from: &'static str| {
        app.client
            .post(format!("{}/api/SSO/access", app.address))
            .header("X-User-Consumo", "sso")
            .header("X-User-Secret", &secret)
            .header("X-Forwarded-For", from)
            .json(&json!({"product": "mesa", "usuario": "ana", "password": "mala", "modo": "normal"}))
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login("203.0.113.7").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(login("198.51.100.20").await.unwrap().status(), 401, "another client is not locked out");
    assert_eq!(last_record(&app).await.client_ip, "198.51.100.20");
}

/// Item 11: Laravel's CORS headers on `/api/`, preflights answered with 204
/// (and not audited), origins restricted by `server.cors_allowed_origins`.
async fn cors_preflights_and_origins(backend: Backend) {
    let app = spawn_app(backend).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/{USERS}", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "x-user-consumo,x-user-secret,content-type")
            .send()
    };
    let before = app.db.recent_audit(100).await.unwrap().len();
    let res = preflight(&app, "http://127.0.0.1:9").await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("*"));
    let methods = header(&res, "access-control-allow-methods").unwrap();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    assert!(methods.contains("PATCH"), "the ticket API changes tickets with PATCH: {methods}");
    let allowed = header(&res, "access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["x-user-consumo", "x-user-secret", "authorization", "content-type", "accept"] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert_eq!(app.db.recent_audit(100).await.unwrap().len(), before, "preflights are not audited");
    // An OPTIONS that is not a preflight is still a 405.
    let res =
        app.client.request(reqwest::Method::OPTIONS, format!("{}/api/{USERS}", app.address)).send().await.unwrap();
    assert_eq!(res.status(), 405);

    // A list of origins: only those, echoed, with Vary.
    let app = spawn_app_with(backend, |s| s.server.cors_allowed_origins = vec!["https://app.example.com".into()]).await;
    let res = preflight(&app, "https://app.example.com").await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("https://app.example.com"));
    let res = preflight(&app, "https://evil.example").await.unwrap();
    assert_ne!(res.status(), 204);
    assert_eq!(header(&res, "access-control-allow-origin"), None);
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("Origin", "https://app.example.com")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin").as_deref(), Some("https://app.example.com"));
    assert!(header(&res, "vary").unwrap_or_default().contains("Origin"));
    let res = app
        .client
        .post(format!("{}/api/{USERS}", app.address))
        .header("Origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), None);
}

crate::on_both_backends!(
    passwords_never_reach_the_bitacora_whatever_the_encoding,
    refused_requests_keep_at_most_512_bytes_of_body,
    the_webhook_refuses_its_token_in_the_query_string,
    response_headers,
    every_route_of_the_table_is_served_as_described,
    metrics_and_openapi_only_from_allowed_clients,
    forwarded_for_only_from_trusted_proxies,
    cors_preflights_and_origins,
);

/// Serves `page` as HTML to every request on a loopback port of its own
/// (another origin than the API's); returns the port.
fn serve_page(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(page.as_bytes());
        }
    });
    port
}

/// Item 11 in a real browser: a page from another origin calls
/// `UsuarioInterno/get` with `fetch` and the consumer headers (a preflighted
/// request), then writes the JSON it read into the page; headless Chromium
/// dumps the page. Without CORS the fetch fails and the page says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs this"]
async fn browser_on_another_origin_reads_the_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = app.consumer("navegador", &[Endpoint::InternalUsers]).await;
    app.user("lvargas", "lvargas@ejemplo.test", "Clave-Segura-2026").await;
    let page = format!(
        r#"<!DOCTYPE html><html><body><pre id="out">esperando</pre><script>
fetch("{api}/api/UsuarioInterno/get", {{
  method: "POST",
  headers: {{"X-User-Consumo": "navegador", "X-User-Secret": "{secret}",
             "Content-Type": "application/json", "Accept": "application/json"}},
  body: JSON.stringify({{"user": "lvargas"}})
}}).then(r => r.json())
  .then(j => {{ document.getElementById("out").textContent = "LEIDO " + JSON.stringify(j); }})
  .catch(e => {{ document.getElementById("out").textContent = "FALLO " + e; }});
</script></body></html>"#,
        api = app.address
    );
    let port = serve_page(page);
    let profile = scratch_dir("chromium");
    let out = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("chromium finished in time")
        .expect("chromium runs (apt-get install chromium)");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("LEIDO"), "the page could not read the API: {dom}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(dom.contains("lvargas@ejemplo.test") && dom.contains("\"status\":\"ok\""), "{dom}");
    let _ = std::fs::remove_dir_all(profile);
}
