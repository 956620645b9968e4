//! `spawn_app` (zero2prod's pattern) and fixtures.

use std::collections::BTreeSet;
use std::sync::Arc;

use helpdesk_db::Db;
use helpdesk_domain::model::{Endpoint, Status};
use helpdesk_domain::ports::SystemClock;
use helpdesk_domain::services::AccessService;
use helpdesk_http::Keys;
use helpdesk_server::{Application, Settings};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

pub struct TestApp {
    pub address: String,
    pub db: Arc<Db>,
    pub keys: Keys,
    pub client: reqwest::Client,
    pub settings: Settings,
}

/// Stamps each listed `async fn name(backend: Backend)` as a test on SQLite
/// and as an ignored test on MySQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MariaDB on HELPDESK_TEST_MYSQL_URL; .ci/run runs it"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Mysql).await
                }
            )*
        }
    };
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::load(None).expect("defaults");
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.seed.demo = false;
    settings.database.url = match backend {
        Backend::Sqlite => helpdesk_db::testing::fresh_sqlite_url(),
        Backend::Mysql => helpdesk_db::testing::fresh_mysql_url().await,
    };
    tweak(&mut settings);
    let keys = settings.keys().expect("keys");
    let app = Application::build(settings.clone()).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp { address, db, keys, client: reqwest::Client::new(), settings }
}

impl TestApp {
    pub fn access(&self) -> AccessService<Db> {
        AccessService::new(self.db.clone(), self.keys.consumer_hmac.clone(), Arc::new(SystemClock))
    }

    /// A consumer granted `grants`; returns its secret.
    pub async fn consumer(&self, name: &str, grants: &[Endpoint]) -> String {
        let grants: BTreeSet<Endpoint> = grants.iter().copied().collect();
        self.access().create(name, grants).await.expect("consumer").1
    }

    pub async fn disable_consumer(&self, name: &str) {
        self.access().set_status(name, Status::Inactive).await.unwrap();
    }

    /// POSTs JSON with consumer headers.
    pub async fn post(&self, path: &str, consumer: (&str, &str), body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/{path}", self.address))
            .header("X-User-Consumo", consumer.0)
            .header("X-User-Secret", consumer.1)
            .header("Accept", "application/json")
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// Status and JSON body of a response.
pub async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// The JSON type of a value, as the documentation's examples show it.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Keys of an object, in order.
pub fn keys(v: &Value) -> Vec<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}
