//! `TestApp::builder` / `spawn_app` (zero2prod's pattern) and fixtures.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helpdesk_db::Db;
use helpdesk_domain::crypto::hash_password;
use helpdesk_domain::model::OutgoingMail;
use helpdesk_domain::model::{Endpoint, Status};
use helpdesk_domain::model::{NewDevice, NewInternalUser, NewProduct};
use helpdesk_domain::ports::SystemClock;
use helpdesk_domain::ports::{Adapters, MailNotifier, NotifyError, ProductRepository, UserRepository};
use helpdesk_domain::services::{AccessService, MailAccountInput, MailAccountService};
use helpdesk_domain::testing::ManualClock;
use helpdesk_notify_smtp::testing::SmtpSink;
use helpdesk_notify_synology::SynologyClient;
use helpdesk_server::{Application, Config, Keys, Parts, Production, Settings, With};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

pub struct TestApp {
    pub address: String,
    pub clock: Arc<ManualClock>,
    /// The SMTP server the app sends to, when started with one.
    pub smtp: Option<SmtpSink>,
    pub db: Arc<Db>,
    pub keys: Keys,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// `settings` validated: what the server runs on.
    pub config: Config,
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

/// Stamps each listed `async fn name(backend: Backend)` as a test on both
/// backends, ignored with the given reasons: for tests that need a server
/// the machine may lack. `.ci/run` installs it and runs them.
#[macro_export]
macro_rules! ignored_on_both_backends {
    ($sqlite:literal, $mysql:literal; $($name:ident),* $(,)?) => {
        mod sqlite_ignored {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $sqlite]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod mysql_ignored {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = $mysql]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Mysql).await
                }
            )*
        }
    };
}

/// Tests that need the real SMTP server (aiosmtpd).
#[macro_export]
macro_rules! with_smtp_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::ignored_on_both_backends!(
            "needs python3 aiosmtpd; .ci/run installs it and runs this",
            "needs MariaDB and python3 aiosmtpd; .ci/run runs it";
            $($name),*
        );
    };
}

/// Tests that need the real IMAP server (Debian's dovecot-imapd).
#[macro_export]
macro_rules! with_imap_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::ignored_on_both_backends!(
            "needs Debian's dovecot-imapd; .ci/run installs it and runs this",
            "needs MariaDB and Debian's dovecot-imapd; .ci/run runs it";
            $($name),*
        );
    };
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::builder(backend).spawn().await
}

/// An app whose mail goes to a real SMTP server on loopback.
pub async fn spawn_app_with_smtp(backend: Backend) -> TestApp {
    TestApp::builder(backend).with_smtp().spawn().await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::builder(backend).with_settings(tweak).spawn().await
}

/// How a test app is started (zero2prod's `spawn_app`, as a builder):
/// `TestApp::builder(backend).with_smtp().with_clock(c).with_settings(|s| ...)
/// .with_mailer(fake).spawn().await`. `M` is the mailer swapped in, if any.
/// A change to the settings, applied before the app is built.
type Tweak<'a> = Box<dyn FnOnce(&mut Settings) + 'a>;

pub struct TestAppBuilder<'a, M = Production> {
    backend: Backend,
    smtp: bool,
    clock: Option<Arc<ManualClock>>,
    tweaks: Vec<Tweak<'a>>,
    mailer: M,
}

impl TestApp {
    pub fn builder<'a>(backend: Backend) -> TestAppBuilder<'a> {
        TestAppBuilder { backend, smtp: false, clock: None, tweaks: Vec::new(), mailer: Production }
    }
}

/// The mail adapter a test app runs with: the production one (SMTP), or a
/// fake swapped in for it.
pub trait MailerChoice {
    type Adapters: Adapters<Store = Db>;
    fn choose(self, parts: Parts<Production>) -> Parts<Self::Adapters>;
}

impl MailerChoice for Production {
    type Adapters = Production;
    fn choose(self, parts: Parts<Production>) -> Parts<Production> {
        parts
    }
}

impl<M: MailNotifier> MailerChoice for Arc<M> {
    type Adapters = With<Db, M, SynologyClient>;
    fn choose(self, parts: Parts<Production>) -> Parts<Self::Adapters> {
        parts.with_mailer(self)
    }
}

impl<'a, M: MailerChoice> TestAppBuilder<'a, M> {
    /// Mail goes to a real SMTP server on loopback (`TestApp::smtp`).
    pub fn with_smtp(mut self) -> Self {
        self.smtp = true;
        self
    }

    /// The app's clock (by default a manual clock at the current time).
    pub fn with_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Changes the settings after the test defaults (in the order given).
    pub fn with_settings(mut self, tweak: impl FnOnce(&mut Settings) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Mail goes to `mailer` instead of SMTP.
    pub fn with_mailer<F: MailNotifier>(self, mailer: Arc<F>) -> TestAppBuilder<'a, Arc<F>> {
        let TestAppBuilder { backend, smtp, clock, tweaks, mailer: _ } = self;
        TestAppBuilder { backend, smtp, clock, tweaks, mailer }
    }

    pub async fn spawn(self) -> TestApp {
        let mut settings = Settings::load(None).expect("defaults");
        settings.server.port = 0;
        settings.server.workers = 2;
        settings.seed.demo = false;
        // Nothing listens there unless a test starts an SMTP server.
        settings.smtp.port = refused_port();
        settings.smtp.timeout_secs = 2;
        settings.outbox.poll_interval_ms = 50;
        // Tests change consumers through the repository and expect it at once.
        settings.server.consumer_cache_secs = 0;
        settings.server.directory_cache_ms = 0;
        settings.ingest.setup_cache_secs = 0;
        settings.consola.counts_cache_ms = 0;
        settings.database.url = match self.backend {
            Backend::Sqlite => helpdesk_db::testing::fresh_sqlite_url(),
            Backend::Mysql => helpdesk_db::testing::fresh_mysql_url().await,
        };
        settings.audit.spool_dir = scratch_dir("spool");
        let smtp = self.smtp.then(SmtpSink::start);
        if let Some(sink) = &smtp {
            settings.smtp.port = sink.port;
        }
        for tweak in self.tweaks {
            tweak(&mut settings);
        }
        let config = settings.validate().expect("valid settings");
        let keys = config.keys.clone();
        let clock = self.clock.unwrap_or_else(|| Arc::new(ManualClock::now_utc()));
        let parts = Parts::production(&config).await.expect("the server starts").with_clock(clock.clone());
        let app = Application::build_with(config.clone(), self.mailer.choose(parts)).await.expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.store.clone();
        tokio::spawn(app.run_until_stopped());
        TestApp { address, clock, smtp, db, keys, client: client(), settings, config }
    }
}

/// The tests' HTTP client. It lets an idle connection go after 2 s, well
/// before the server's keep-alive (actix's 5 s) closes it: reusing a
/// connection the server is closing at that instant fails with
/// `IncompleteMessage` (seen once under load, between two bursts of
/// requests separated by a slow Argon2 hash).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(2)).build().expect("an HTTP client")
}

/// A [`MailNotifier`] that keeps what it is given, for tests that swap the
/// mail adapter (`TestApp::builder(backend).with_mailer(fake)`).
#[derive(Default)]
pub struct RecordingMailer {
    sent: Mutex<Vec<OutgoingMail>>,
}

impl RecordingMailer {
    pub fn sent(&self) -> Vec<OutgoingMail> {
        self.sent.lock().unwrap().clone()
    }

    /// Waits until `n` mails were sent, at most `timeout`; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<OutgoingMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.sent.lock().unwrap().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sent()
    }
}

impl MailNotifier for RecordingMailer {
    fn send(&self, mail: OutgoingMail) -> impl Future<Output = Result<String, NotifyError>> + Send {
        let mut sent = self.sent.lock().unwrap();
        sent.push(mail);
        let id = format!("recorded-{}@helpdesk.test", sent.len());
        async move { Ok(id) }
    }
}

impl TestApp {
    /// What the database holds, outside the bitácora: SQLite's `.dump`
    /// (the `sqlite3` shell), MariaDB's `CHECKSUM TABLE` of every table (the
    /// `mariadb` client). Equal fingerprints: nothing was written.
    pub fn fingerprint(&self) -> String {
        let url = &self.settings.database.url;
        let keep = |line: &&str| !line.contains("bitacora_log") && !line.contains("bitacora_secuencia");
        if let Some(path) = url.strip_prefix("sqlite://") {
            let out = std::process::Command::new("sqlite3")
                .args([path, ".dump"])
                .output()
                .expect("the sqlite3 shell (Debian's sqlite3; .ci/run installs it)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return String::from_utf8_lossy(&out.stdout).lines().filter(keep).collect::<Vec<_>>().join("\n");
        }
        let u = url::Url::parse(url).expect("a MySQL URL");
        let (host, port, db) = (u.host_str().unwrap(), u.port().unwrap_or(3306), u.path().trim_start_matches('/'));
        let client = |sql: &str| {
            let out = std::process::Command::new("mariadb")
                .args([
                    &format!("-u{}", u.username()),
                    &format!("-h{host}"),
                    &format!("-P{port}"),
                    "-N",
                    "-B",
                    db,
                    "-e",
                    sql,
                ])
                .output()
                .expect("the mariadb client");
            assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let tables = client("SHOW TABLES");
        let tables: Vec<&str> = tables.lines().filter(keep).collect();
        client(&format!("CHECKSUM TABLE {}", tables.join(", ")))
    }
}

/// A new directory under the system's temporary directory.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("helpdesk-tests").join(format!("{what}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A loopback port where connections are refused: a socket bound to it,
/// never listening, is kept open for the life of the test process, so no
/// other process can take the port meanwhile.
pub fn refused_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        // SAFETY: plain socket calls on a descriptor this function owns; the
        // address structure is fully initialised before use.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket()");
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len), 0, "bind()");
            let mut len = len;
            assert_eq!(libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len), 0);
            // The descriptor is deliberately never closed.
            u16::from_be(addr.sin_port)
        }
    })
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

    pub async fn product(&self, alias: &str) {
        self.db.create_product(NewProduct { alias: alias.into(), name: format!("Producto {alias}") }).await.unwrap();
    }

    /// An active user with this password; returns its id.
    pub async fn user(&self, login: &str, email: &str, password: &str) -> i64 {
        let new = NewInternalUser {
            login: login.into(),
            name: format!("Persona {login}"),
            email: email.into(),
            national_id: "1-0000-0000".into(),
            user_type: "operador".into(),
            mobile: "+506.70000000".into(),
            system_access: String::new(),
            password_hash: Some(hash_password(password)),
            ..Default::default()
        };
        self.db.create_user(new).await.unwrap().id
    }

    /// A device of `user_id` with this PIN; returns its id.
    /// An active mailbox of the reading channel (`imap.helpdesk.test`),
    /// routing to `department_id`; `acknowledge`: whether new tickets get
    /// an acknowledgement.
    pub async fn mailbox(&self, user: &str, department_id: i64, acknowledge: bool) {
        MailAccountService::new(self.db.clone(), self.keys.secret_box.clone())
            .add(MailAccountInput {
                host: "imap.helpdesk.test".into(),
                user: user.into(),
                password: "x".into(),
                port: "993".into(),
                mailboxes: vec![],
                department_id,
                status: Status::Active,
                send_acknowledgement: acknowledge,
            })
            .await
            .unwrap();
    }

    pub async fn device(&self, user_id: i64, pin: &str) -> i64 {
        self.db
            .add_device(NewDevice { user_id, name: "teléfono".into(), pin_hash: hash_password(pin) })
            .await
            .unwrap()
            .id
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

/// Polls `done` every 20 ms until it holds; fails the test after `within`.
pub async fn wait_until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
