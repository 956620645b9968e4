//! The adapter against a receiver on loopback (plain tokio sockets): what
//! arrives, what comes back, redirects, deadlines, failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpdesk_domain::model::WebhookPost;
use helpdesk_domain::ports::WebhookSender;
use helpdesk_notify_webhook::HttpWebhookSender;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as it arrived: its request line, headers (names lower-case)
/// and body.
#[derive(Debug, Clone)]
struct Arrived {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Arrived {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Answers every request with `answer` (a status line and headers), after
/// `delay`; keeps what arrived.
async fn receiver(answer: &'static str, delay: Duration) -> (String, Arc<Mutex<Vec<Arrived>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let arrived = Arc::new(Mutex::new(Vec::new()));
    let kept = arrived.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let line = lines.next().unwrap().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize =
                    headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
                while data.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                let body = String::from_utf8_lossy(&data[head_end..]).into_owned();
                kept.lock().unwrap().push(Arrived { line, headers, body });
                tokio::time::sleep(delay).await;
                let reply = format!("{answer}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    (base, arrived)
}

fn post(url: String) -> WebhookPost {
    WebhookPost {
        url,
        headers: vec![
            ("Content-Type", "application/json".into()),
            ("X-Helpdesk-Event", "ticket.creado".into()),
            ("X-Helpdesk-Delivery", "evt_abc".into()),
            ("X-Helpdesk-Signature", "sha256=00ff".into()),
        ],
        body: r#"{"id":"evt_abc","ticket":{"asunto":"Camión ñandú"}}"#.into(),
    }
}

#[tokio::test]
async fn the_post_carries_the_domains_headers_and_body_and_gives_back_the_status() {
    let sender = HttpWebhookSender::new(Duration::from_secs(5)).unwrap();
    for (answer, status) in [("HTTP/1.1 204 No Content", 204), ("HTTP/1.1 500 Oops", 500), ("HTTP/1.1 410 Gone", 410)] {
        let (base, arrived) = receiver(answer, Duration::ZERO).await;
        assert_eq!(sender.post(post(format!("{base}/hook?a=1"))).await, Ok(status));
        let got = arrived.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "once");
        let r = &got[0];
        assert_eq!(r.line, "POST /hook?a=1 HTTP/1.1");
        assert_eq!(r.body, post(String::new()).body, "the bytes the domain signed");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-helpdesk-event"), Some("ticket.creado"));
        assert_eq!(r.header("x-helpdesk-delivery"), Some("evt_abc"));
        assert_eq!(r.header("x-helpdesk-signature"), Some("sha256=00ff"));
    }
}

#[tokio::test]
async fn redirects_are_answers_not_followed() {
    let sender = HttpWebhookSender::new(Duration::from_secs(5)).unwrap();
    let (base, arrived) = receiver("HTTP/1.1 302 Found\r\nLocation: /otro", Duration::ZERO).await;
    assert_eq!(sender.post(post(format!("{base}/hook"))).await, Ok(302));
    let lines: Vec<String> = arrived.lock().unwrap().iter().map(|r| r.line.clone()).collect();
    assert_eq!(lines, ["POST /hook HTTP/1.1"], "the Location was not visited");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_in_time_is_an_error_within_the_deadline() {
    let sender = HttpWebhookSender::new(Duration::from_millis(300)).unwrap();
    let (base, arrived) = receiver("HTTP/1.1 200 OK", Duration::from_secs(30)).await;
    let started = Instant::now();
    let r = sender.post(post(format!("{base}/lento"))).await;
    assert_eq!(r, Err("no answer within 300 ms".into()));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(arrived.lock().unwrap().len(), 1, "it was sent");
}

#[tokio::test]
async fn connection_failures_are_errors_without_the_url() {
    let sender = HttpWebhookSender::new(Duration::from_secs(2)).unwrap();
    // A port nobody listens on any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = sender.post(post(format!("http://usuario:clave-secreta@127.0.0.1:{port}/hook"))).await;
    let error = r.unwrap_err();
    assert!(!error.contains("clave-secreta") && !error.contains("/hook"), "{error}");
}
