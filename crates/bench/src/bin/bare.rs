//! The ceiling for request handling: actix-web answering a small JSON body,
//! with the same worker count as the server. `bare <port> <workers>`.

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(18090);
    let workers: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    HttpServer::new(|| {
        App::new().route(
            "/json",
            web::post().to(|body: web::Bytes| async move {
                let _ = body;
                HttpResponse::Ok().json(serde_json::json!({"data": [], "status": "ok", "message": "", "code": 200}))
            }),
        )
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
