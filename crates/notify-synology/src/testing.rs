//! A fake Synology Chat on loopback that speaks its API (feature `testing`):
//! `POST /webapi/entry.cgi?api=SYNO.Chat.External&method=...&token="..."`
//! with `payload=<JSON>`, answering like Synology does. Its behaviour can be
//! switched to failures, and every call is recorded.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    /// HTTP 500.
    ServerError,
    /// HTTP 200 with `success: false`, as Synology reports errors.
    Refuse,
    /// HTTP 200 with an HTML page that repeats the request line, query
    /// string included (as some proxies' error pages do).
    EchoRequest,
}

/// One accepted call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub token: String,
    pub payload: Value,
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    calls: Vec<Call>,
    refused: usize,
    next_post_id: u64,
}

#[derive(Clone)]
pub struct FakeSynology {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeSynology {
    /// Starts on a free loopback port; must run inside a tokio runtime.
    pub fn start() -> FakeSynology {
        let state =
            Arc::new(Mutex::new(State { mode: Some(Mode::Ok), next_post_id: 23059679412324, ..Default::default() }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("address").port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(shared.clone())).route("/webapi/entry.cgi", web::post().to(entry))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        FakeSynology { base_url: format!("http://127.0.0.1:{port}"), state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().expect("lock").mode = Some(mode);
    }

    /// Calls answered with success.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("lock").calls.clone()
    }

    /// Calls answered with a failure.
    pub fn refused(&self) -> usize {
        self.state.lock().expect("lock").refused
    }
}

fn query_value(req: &HttpRequest, key: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

async fn entry(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let mode = state.lock().expect("lock").mode.unwrap_or(Mode::Ok);
    let api = query_value(&req, "api");
    let method = query_value(&req, "method").unwrap_or_default();
    let token = query_value(&req, "token").unwrap_or_default();
    let payload = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok());
    // Synology's own checks: the API name, a quoted token, a JSON payload.
    let well_formed = api.as_deref() == Some("SYNO.Chat.External")
        && query_value(&req, "version").as_deref() == Some("2")
        && token.len() > 2
        && token.starts_with('"')
        && token.ends_with('"')
        && payload.is_some();
    if !well_formed {
        state.lock().expect("lock").refused += 1;
        return HttpResponse::Ok()
            .json(json!({"error": {"code": 101, "errors": {"reason": "bad request"}}, "success": false}));
    }
    match mode {
        Mode::ServerError => {
            state.lock().expect("lock").refused += 1;
            HttpResponse::InternalServerError().body("Internal Server Error")
        }
        Mode::EchoRequest => {
            state.lock().expect("lock").refused += 1;
            HttpResponse::Ok()
                .content_type("text/html")
                .body(format!("<html><body>Bad gateway: POST {}</body></html>", req.uri()))
        }
        Mode::Refuse => {
            state.lock().expect("lock").refused += 1;
            HttpResponse::Ok().json(
                json!({"error": {"code": 120, "errors": {"name": "payload", "reason": "busy"}}, "success": false}),
            )
        }
        Mode::Ok => {
            let payload = payload.expect("checked");
            let mut st = state.lock().expect("lock");
            st.next_post_id += 1;
            let post_id = st.next_post_id;
            st.calls.push(Call {
                method: method.clone(),
                token: token.trim_matches('"').to_string(),
                payload: payload.clone(),
            });
            let mut map = serde_json::Map::new();
            if let Some(users) = payload.get("user_ids").and_then(Value::as_array) {
                for u in users {
                    map.insert(u.to_string(), json!(post_id));
                }
            }
            HttpResponse::Ok().json(json!({"data": {"fail": null, "succ": {"user_id_post_map": map}}, "success": true}))
        }
    }
}
