//! The Synology adapter against a fake that speaks Synology Chat's API.

use std::time::Duration;

use helpdesk_domain::model::ChatContent;
use helpdesk_domain::ports::{ChatNotifier, NotifyError};
use helpdesk_notify_synology::testing::{FakeSynology, Mode};
use helpdesk_notify_synology::{SynologyClient, SynologySettings};
use serde_json::json;

fn plain(text: &str) -> ChatContent {
    ChatContent::Plain { text: text.into() }
}

fn client(base: &str) -> SynologyClient {
    SynologyClient::new(&SynologySettings {
        base_url: base.into(),
        bot_token: "bot-secreto".into(),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

#[tokio::test]
async fn bot_and_channel_messages_arrive_and_failures_are_temporary() {
    let fake = FakeSynology::start();
    let c = client(&fake.base_url);
    let answer = c.send_to_user(120, plain("Hola, ñandú")).await.unwrap();
    assert_eq!(answer["success"], true);
    assert!(answer["data"]["succ"]["user_id_post_map"]["120"].is_u64(), "{answer}");
    let new_ticket = ChatContent::NewTicket { number: 7, subject: "Impresora".into(), from: "c@x.test".into() };
    c.send_to_channel("canal-token".into(), new_ticket).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].method.as_str(), calls[0].token.as_str()), ("chatbot", "bot-secreto"));
    assert_eq!(calls[0].payload, json!({"text": "Hola, ñandú", "user_ids": [120]}));
    assert_eq!((calls[1].method.as_str(), calls[1].token.as_str()), ("incoming", "canal-token"));
    assert_eq!(
        calls[1].payload,
        json!({"text": "Nuevo ticket #7: Impresora (de c@x.test)"}),
        "in the words of messages"
    );
    assert_eq!(fake.refused(), 0, "every request was well formed");

    fake.set_mode(Mode::ServerError);
    assert!(matches!(c.send_to_user(120, plain("x")).await, Err(NotifyError::Temporary(_))));
    fake.set_mode(Mode::Refuse);
    let err = c.send_to_user(120, plain("x")).await.unwrap_err();
    assert!(matches!(&err, NotifyError::Temporary(m) if m.contains("120")), "{err:?}");
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_is_temporary_and_bad_urls_are_refused() {
    // Bound but not listening: connections are refused, and nothing else
    // can take the port while the test holds it.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let c = client(&format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port()));
    assert!(matches!(c.send_to_user(1, plain("x")).await, Err(NotifyError::Temporary(_))));
    assert!(
        SynologyClient::new(&SynologySettings {
            base_url: "ftp://nas".into(),
            bot_token: String::new().into(),
            timeout: Duration::from_secs(1)
        })
        .is_err()
    );
}

/// No error text carries a token: not the transport's (whose text would
/// name the URL, token included), not a page the other side sent back.
#[tokio::test]
async fn no_error_text_carries_a_token() {
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let c = client(&format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port()));
    let check = |err: NotifyError, what: &str| {
        let text = match &err {
            NotifyError::Temporary(t) | NotifyError::Permanent(t) => t.clone(),
        };
        for secret in ["bot-secreto", "canal-secreto+/=", "canal-secreto%2B%2F%3D"] {
            assert!(!text.contains(secret), "{what}: {secret:?} in {text:?}");
        }
        text
    };
    let text = check(c.send_to_user(1, plain("x")).await.unwrap_err(), "refused connection, bot");
    assert!(text.contains("Synology unreachable") && text.to_lowercase().contains("connect"), "{text}");
    assert!(!text.contains("entry.cgi"), "no URL in a transport error: {text}");
    check(c.send_to_channel("canal-secreto+/=".into(), plain("x")).await.unwrap_err(), "refused connection, channel");

    let fake = FakeSynology::start();
    fake.set_mode(Mode::EchoRequest);
    let c = client(&fake.base_url);
    let text = check(c.send_to_user(1, plain("x")).await.unwrap_err(), "echoed request, bot");
    assert!(text.contains("non-JSON") && text.contains("[token]"), "{text}");
    check(c.send_to_channel("canal-secreto+/=".into(), plain("x")).await.unwrap_err(), "echoed request, channel");
}
