//! Configuration: `config/default.toml` (compiled in), an optional file,
//! then `HELPDESK__SECTION__KEY` environment variables, read into
//! [`Settings`] (the values as given). [`Settings::validate`] checks every
//! value once and gives the typed [`Config`] the server runs on; a bad one
//! stops it with one line naming its key. Secrets are [`SecretString`]s: no
//! `Debug` of the settings prints one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use helpdesk_db::{DbOptions, DbUrl};
use helpdesk_domain::Cause;
use helpdesk_domain::crypto::{SecretBox, SecretHasher, TokenSigner, parse_key};
use helpdesk_domain::model::Address;
use helpdesk_domain::services::{
    ConsoleSettings, IngestSettings, OutboxSettings, OwnAddresses, ReaderSettings, SsoSettings, ThrottlePolicy,
    WebhookSettings,
};
use helpdesk_http::{CorsOrigins, HttpPolicy, Limits, parse_cidrs};
use helpdesk_notify_smtp::{Security, SmtpSettings};
use helpdesk_notify_synology::SynologySettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../../../config/default.toml");
pub const ENV_PREFIX: &str = "HELPDESK";
pub const CONFIG_FILE_VAR: &str = "HELPDESK_CONFIG";

/// The pool's size on MySQL when `database.max_connections` is unset.
pub const MYSQL_CONNECTIONS: usize = 8;
/// The pool's size on SQLite when `database.max_connections` is unset.
/// SQLite has one writer, and each connection holds its own copy of the
/// schema and of its prepared statements (about 1.75 MiB each under the
/// benchmark's load): beyond four, more connections held memory and gave
/// no throughput on two cores (docs/benchmarks.md).
pub const SQLITE_CONNECTIONS: usize = 4;
/// Most mails of a batch the reader may ingest at once.
pub const MAX_READER_CONCURRENCY: usize = 64;

/// Insecure keys for the dev profile only.
const DEV_CONSUMER_HMAC: &str = "6465762d6f6e6c792d636f6e73756d65722d686d61632d6b65792d2d2d2d2d2d";
const DEV_SECRET_BOX: &str = "6465762d6f6e6c792d7365637265742d626f782d6b65792d2d2d2d2d2d2d2d2d";
const DEV_JWT: &str = "6465762d6f6e6c792d6a77742d7369676e696e672d6b65792d2d2d2d2d2d2d2d";

/// Keys the services need (no `Debug`: nothing prints them).
#[derive(Clone)]
pub struct Keys {
    pub consumer_hmac: SecretHasher,
    pub secret_box: SecretBox,
    pub tokens: TokenSigner,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub profile: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub keys: KeySettings,
    pub sso: SsoConfig,
    pub smtp: SmtpConfig,
    pub synology: SynologyConfig,
    pub ingest: IngestConfig,
    pub mail: MailConfig,
    pub outbox: OutboxConfig,
    pub webhooks: WebhooksConfig,
    pub sla: SlaConfig,
    pub reader: ReaderConfig,
    pub audit: AuditConfig,
    pub consola: ConsoleConfig,
    pub log: LogSettings,
    pub seed: SeedSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuditConfig {
    /// Where bitácora records wait while the database cannot take them.
    pub spool_dir: PathBuf,
    /// Most bytes the spool may hold; beyond, requests are refused (503).
    pub spool_max_bytes: u64,
    /// How often a non-empty spool is offered to the database.
    pub spool_drain_interval_ms: u64,
    /// Days records are kept; 0: for ever.
    pub keep_days: u32,
    /// Calls refused for their credentials, per client address and minute,
    /// that keep records of their own; the rest are counted into one.
    pub refused_burst: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    pub consumer_cache_secs: u64,
    /// How long a `UsuarioInterno/get` answer is served from memory.
    pub directory_cache_ms: u64,
    /// Reverse proxies (CIDR blocks) whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// Clients (CIDR blocks) that may read `/metrics` and `/openapi.json`.
    #[serde(deserialize_with = "string_list")]
    pub metrics_allow: Vec<String>,
    /// Origins browsers may call `/api/` from; `*`: any.
    #[serde(deserialize_with = "string_list")]
    pub cors_allowed_origins: Vec<String>,
    /// The address people reach the server at.
    pub public_url: String,
    /// How long `/ready`'s answer (a ping and a write probe) is kept.
    pub ready_probe_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleConfig {
    pub idle_minutes: i64,
    pub max_hours: i64,
    pub counts_cache_ms: u64,
    pub presence_secs: i64,
}

/// A list setting: a TOML array, or one string with the items separated by
/// commas or spaces (how an environment variable gives it).
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split([',', ' ']).map(str::trim).filter(|v| !v.is_empty()).map(String::from).collect(),
        OneOrMany::Many(v) => v,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// The pool's size; unset: [`MYSQL_CONNECTIONS`] on MySQL,
    /// [`SQLITE_CONNECTIONS`] on SQLite (see [`Settings::max_connections`]).
    pub max_connections: Option<usize>,
    pub acquire_timeout_secs: u64,
    pub statement_timeout_ms: u64,
    pub migrate_on_start: bool,
    /// Groups of bitácora records committed at once (1 to max_connections).
    pub audit_writers: usize,
    /// SQLite only: the database file's largest size; 0: the disk's.
    pub sqlite_max_size_mib: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeySettings {
    pub consumer_hmac: SecretString,
    pub secret_box: SecretString,
    pub jwt: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SsoConfig {
    pub token_ttl_minutes: i64,
    pub session_max_days: i64,
    pub issuer: String,
    pub reset_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: String,
    pub username: String,
    pub password: SecretString,
    pub from: String,
    pub timeout_secs: u64,
    /// PEM file of extra trusted root certificates; empty: WebPKI roots only.
    pub ca_file: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SynologyConfig {
    pub base_url: String,
    pub bot_token: SecretString,
    pub outgoing_token: SecretString,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    pub setup_cache_secs: u64,
    /// How long the request writing new tickets waits for others to join
    /// its batch while mails come in company (microseconds; 0: never).
    pub batch_linger_us: u64,
    pub default_department_id: i64,
    pub acks_per_hour: i64,
    pub message_id_domain: String,
    /// New participants a mail from outside an existing ticket may add.
    pub max_new_participants: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailConfig {
    /// Addresses of ours besides the reading channel's mailboxes and the
    /// SMTP sender (aliases, a shared inbox that forwards to a mailbox).
    #[serde(deserialize_with = "string_list")]
    pub own_addresses: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxConfig {
    pub poll_interval_ms: u64,
    pub inline_timeout_ms: u64,
    pub max_attempts: i32,
    pub lease_secs: i64,
    pub base_backoff_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlaConfig {
    /// How often the worker escalates and assigns waiting tickets.
    pub poll_interval_ms: u64,
}

/// Longest retention a setting accepts: a hundred years (`0` is for ever).
const MAX_KEEP_DAYS: u32 = 36_500;

#[derive(Debug, Clone, Deserialize)]
pub struct WebhooksConfig {
    pub poll_interval_ms: u64,
    pub timeout_ms: u64,
    pub max_attempts: i32,
    pub base_backoff_ms: i64,
    pub max_backoff_ms: i64,
    /// Days finished deliveries are kept; 0: for ever.
    pub keep_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReaderConfig {
    pub interval_secs: u64,
    pub storage_dir: PathBuf,
    pub max_message_bytes: u64,
    pub timeout_secs: u64,
    pub allow_plaintext: bool,
    pub system: String,
    /// PEM file of extra trusted root certificates; empty: WebPKI roots only.
    pub ca_file: String,
    /// Mails downloaded, flagged and checkpointed together.
    pub batch_size: usize,
    /// Mails of a batch ingested at once (a reply after its parent).
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeedSettings {
    pub demo: bool,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    /// What the value's parser said, when it was another library.
    #[source]
    pub cause: Option<Cause>,
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), message: message.into(), cause: None }
}

/// A value another library refused: its error is the cause.
fn bad_by(key: &str, message: &str, e: impl std::error::Error + Send + Sync + 'static) -> ConfigError {
    ConfigError { key: key.into(), message: message.into(), cause: Some(Arc::new(e)) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Dev,
    Prod,
}

/// The settings checked and parsed, once, at load: everything the server
/// and the admin commands run on. Nothing here can fail later.
#[derive(Clone)]
pub struct Config {
    /// The values as given (plain numbers and names are read from here).
    pub settings: Settings,
    pub profile: Profile,
    pub db_url: DbUrl,
    pub db: DbOptions,
    pub keys: Keys,
    pub sso: SsoSettings,
    pub smtp: SmtpSettings,
    pub synology: SynologySettings,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
    pub webhooks: WebhookSettings,
    /// How long one webhook attempt may take.
    pub webhook_timeout: Duration,
    /// How often the service-level worker runs.
    pub sla_poll: Duration,
    /// How long bitácora records are kept (`None`: for ever).
    pub audit_keep: Option<chrono::Duration>,
    pub limits: Limits,
    pub http: HttpPolicy,
    pub reader: ReaderSettings,
    pub reader_ca_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// `server.public_url`, parsed.
    pub public_url: url::Url,
    pub console: ConsoleSettings,
}

/// The values as given (whose secrets print redacted) and the profile; the
/// parsed keys are never printed.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("profile", &self.profile)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Our own addresses ([`IngestSettings::own_addresses`]), with the
    /// mailboxes read as routing reads them (each service keeps its own
    /// cache of them).
    pub fn own(&self) -> OwnAddresses {
        OwnAddresses::new(self.ingest.own_addresses.clone(), self.ingest.setup_cache)
    }

    /// The Synology bot's outgoing token, as the webhook compares it.
    pub fn bot_outgoing_token(&self) -> &str {
        self.settings.synology.outgoing_token.expose_secret()
    }

    /// Whether the Synology bot may message users (its token is set).
    fn chat_to_users(settings: &Settings) -> bool {
        !settings.synology.bot_token.expose_secret().trim().is_empty()
    }
}

impl Settings {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(f) = file {
            if !f.exists() {
                return Err(bad("--config", format!("file {} does not exist", f.display())));
            }
            builder = builder.add_source(config::File::from(f));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX).prefix_separator("__").separator("__").try_parsing(true),
        );
        let raw = builder.build().map_err(from_config_error)?;
        raw.try_deserialize().map_err(from_config_error)
    }

    fn profile(&self) -> Result<Profile, ConfigError> {
        match self.profile.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" => Ok(Profile::Dev),
            "prod" | "production" => Ok(Profile::Prod),
            other => Err(bad("profile", format!("unknown profile {other:?}: use \"dev\" or \"prod\""))),
        }
    }

    fn db_url(&self) -> Result<DbUrl, ConfigError> {
        DbUrl::parse(&self.database.url).map_err(|e| bad_by("database.url", "not usable", e))
    }

    /// The pool's size: `database.max_connections`, or, unset, a default
    /// for the backend the URL names.
    pub fn max_connections(&self) -> usize {
        self.database.max_connections.unwrap_or(match self.db_url() {
            Ok(DbUrl::Sqlite(_)) => SQLITE_CONNECTIONS,
            _ => MYSQL_CONNECTIONS,
        })
    }

    fn db_options(&self) -> Result<DbOptions, ConfigError> {
        let max_connections = self.max_connections();
        if max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        if self.database.audit_writers < 1 || self.database.audit_writers > max_connections {
            return Err(bad("database.audit_writers", "must be at least 1 and at most database.max_connections"));
        }
        if self.database.acquire_timeout_secs == 0 {
            return Err(bad("database.acquire_timeout_secs", "must be at least 1"));
        }
        if self.database.statement_timeout_ms == 0 {
            return Err(bad("database.statement_timeout_ms", "must be at least 1"));
        }
        if !(1..=60).contains(&self.server.ready_probe_secs) {
            return Err(bad("server.ready_probe_secs", "must be between 1 and 60"));
        }
        Ok(DbOptions {
            max_connections,
            acquire_timeout: Duration::from_secs(self.database.acquire_timeout_secs),
            statement_timeout: Duration::from_millis(self.database.statement_timeout_ms),
            sqlite_max_bytes: self.database.sqlite_max_size_mib.saturating_mul(1024 * 1024),
            ..DbOptions::default()
        })
    }

    fn keys(&self) -> Result<Keys, ConfigError> {
        let profile = self.profile()?;
        let key = |name: &str, value: &str, dev: &str| -> Result<[u8; 32], ConfigError> {
            let value = value.trim();
            let full = format!("keys.{name}");
            if value.is_empty() {
                return match profile {
                    Profile::Dev => Ok(parse_key(dev).expect("built-in dev key")),
                    Profile::Prod => {
                        Err(bad(&full, "must be set in the prod profile (64 hex digits; `openssl rand -hex 32`)"))
                    }
                };
            }
            parse_key(value).map_err(|e| bad(&full, e.to_string()))
        };
        Ok(Keys {
            consumer_hmac: SecretHasher::new(key(
                "consumer_hmac",
                self.keys.consumer_hmac.expose_secret(),
                DEV_CONSUMER_HMAC,
            )?),
            secret_box: SecretBox::new(key("secret_box", self.keys.secret_box.expose_secret(), DEV_SECRET_BOX)?),
            tokens: TokenSigner::new(key("jwt", self.keys.jwt.expose_secret(), DEV_JWT)?, &self.sso.issuer),
        })
    }

    fn sso(&self) -> Result<SsoSettings, ConfigError> {
        if !(1..=60 * 24 * 30).contains(&self.sso.token_ttl_minutes) {
            return Err(bad("sso.token_ttl_minutes", "must be between 1 and 43200 (30 days)"));
        }
        if !(1..=3650).contains(&self.sso.session_max_days) {
            return Err(bad("sso.session_max_days", "must be between 1 and 3650"));
        }
        if self.sso.issuer.trim().is_empty() {
            return Err(bad("sso.issuer", "must not be empty"));
        }
        let url = url::Url::parse(&self.sso.reset_url).map_err(|e| bad_by("sso.reset_url", "not a URL", e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("sso.reset_url", "must be an http(s) URL"));
        }
        Ok(SsoSettings {
            token_ttl: chrono::Duration::minutes(self.sso.token_ttl_minutes),
            session_max: chrono::Duration::days(self.sso.session_max_days),
            reset_url: self.sso.reset_url.trim_end_matches('?').to_string(),
            throttle: ThrottlePolicy::default(),
        })
    }

    fn smtp(&self) -> Result<SmtpSettings, ConfigError> {
        let s = &self.smtp;
        let security = Security::parse(&s.security)
            .ok_or_else(|| bad("smtp.security", format!("unknown {:?}: use none, starttls or tls", s.security)))?;
        if s.host.trim().is_empty() {
            return Err(bad("smtp.host", "must not be empty"));
        }
        helpdesk_notify_smtp::check_mailbox(&s.from).map_err(|e| bad("smtp.from", e))?;
        let opt = |v: &str| Some(v.to_string()).filter(|v| !v.is_empty());
        Ok(SmtpSettings {
            host: s.host.clone(),
            port: s.port,
            security,
            username: opt(&s.username),
            password: Some(s.password.clone()).filter(|p| !p.expose_secret().is_empty()),
            from: s.from.clone(),
            timeout: Duration::from_secs(s.timeout_secs.max(1)),
            ca_file: ca_file("smtp.ca_file", &s.ca_file)?,
        })
    }

    /// Trusted proxies, the `/metrics` allow-list and CORS origins.
    fn http_policy(&self) -> Result<HttpPolicy, ConfigError> {
        let s = &self.server;
        Ok(HttpPolicy {
            trusted_proxies: parse_cidrs(&s.trusted_proxies).map_err(|e| bad("server.trusted_proxies", e))?,
            metrics_allow: parse_cidrs(&s.metrics_allow).map_err(|e| bad("server.metrics_allow", e))?,
            cors_origins: CorsOrigins::parse(&s.cors_allowed_origins)
                .map_err(|e| bad("server.cors_allowed_origins", e))?,
        })
    }

    fn limits(&self) -> Result<Limits, ConfigError> {
        if self.server.body_limit_bytes < 1024 {
            return Err(bad("server.body_limit_bytes", "must be at least 1024"));
        }
        let inline = self.outbox.inline_timeout_ms;
        Ok(Limits {
            body_bytes: self.server.body_limit_bytes,
            inline_delivery: (inline > 0).then(|| Duration::from_millis(inline)),
        })
    }

    fn synology(&self) -> Result<SynologySettings, ConfigError> {
        let s = &self.synology;
        let url = url::Url::parse(&s.base_url).map_err(|e| bad_by("synology.base_url", "not a URL", e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("synology.base_url", "must be an http(s) URL"));
        }
        Ok(SynologySettings {
            base_url: s.base_url.clone(),
            bot_token: s.bot_token.clone(),
            timeout: Duration::from_secs(s.timeout_secs.max(1)),
        })
    }

    fn ingest(&self) -> Result<IngestSettings, ConfigError> {
        let i = &self.ingest;
        if i.default_department_id < 0 {
            return Err(bad("ingest.default_department_id", "must be 0 (first active) or a department id"));
        }
        if i.acks_per_hour < 0 {
            return Err(bad("ingest.acks_per_hour", "must not be negative"));
        }
        if i.message_id_domain.trim().is_empty() || i.message_id_domain.contains(['@', ' ', '<', '>']) {
            return Err(bad("ingest.message_id_domain", "must be a domain name such as helpdesk.example.com"));
        }
        if !(1..=1000).contains(&i.max_new_participants) {
            return Err(bad("ingest.max_new_participants", "must be 1 to 1000"));
        }
        Ok(IngestSettings {
            own_addresses: self.own_addresses()?,
            max_new_participants: i.max_new_participants,
            default_department_id: (i.default_department_id > 0).then_some(i.default_department_id),
            acks_per_hour: i.acks_per_hour,
            chat_to_users: Config::chat_to_users(self),
            first_attempt_grace: chrono::Duration::milliseconds(self.outbox.inline_timeout_ms as i64 * 2),
            setup_cache: Duration::from_secs(i.setup_cache_secs),
        })
    }

    /// Our addresses besides the mailboxes: the SMTP sender and
    /// `mail.own_addresses`, each an address.
    fn own_addresses(&self) -> Result<Vec<Address>, ConfigError> {
        let mut own = Vec::new();
        if let Some(from) = Address::parse(&self.smtp.from) {
            own.push(from);
        }
        for a in &self.mail.own_addresses {
            let parsed = Address::parse(a)
                .ok_or_else(|| bad("mail.own_addresses", format!("{a:?} is not an e-mail address")))?;
            own.push(parsed);
        }
        Ok(own)
    }

    fn outbox(&self) -> Result<OutboxSettings, ConfigError> {
        let o = &self.outbox;
        if o.max_attempts < 1 {
            return Err(bad("outbox.max_attempts", "must be at least 1"));
        }
        if o.lease_secs < 5 {
            return Err(bad("outbox.lease_secs", "must be at least 5"));
        }
        if o.base_backoff_secs < 1 {
            return Err(bad("outbox.base_backoff_secs", "must be at least 1"));
        }
        if o.poll_interval_ms < 10 {
            return Err(bad("outbox.poll_interval_ms", "must be at least 10"));
        }
        Ok(OutboxSettings {
            max_attempts: o.max_attempts,
            lease: chrono::Duration::seconds(o.lease_secs),
            base_backoff: chrono::Duration::seconds(o.base_backoff_secs),
            max_backoff: chrono::Duration::hours(1),
        })
    }

    /// How often the service-level worker runs.
    fn sla_poll(&self) -> Result<Duration, ConfigError> {
        if self.sla.poll_interval_ms < 10 {
            return Err(bad("sla.poll_interval_ms", "must be at least 10"));
        }
        Ok(Duration::from_millis(self.sla.poll_interval_ms))
    }

    /// The delivery of outgoing webhooks. A delivery is leased for the
    /// attempt's timeout and a minute more: longer than any attempt, so no
    /// two workers send it at once.
    fn webhooks(&self) -> Result<WebhookSettings, ConfigError> {
        let w = &self.webhooks;
        if w.poll_interval_ms < 10 {
            return Err(bad("webhooks.poll_interval_ms", "must be at least 10"));
        }
        if !(100..=300_000).contains(&w.timeout_ms) {
            return Err(bad("webhooks.timeout_ms", "must be between 100 and 300000"));
        }
        if w.max_attempts < 1 {
            return Err(bad("webhooks.max_attempts", "must be at least 1"));
        }
        if w.base_backoff_ms < 1 {
            return Err(bad("webhooks.base_backoff_ms", "must be at least 1"));
        }
        if w.max_backoff_ms < w.base_backoff_ms {
            return Err(bad("webhooks.max_backoff_ms", "must be at least webhooks.base_backoff_ms"));
        }
        if w.keep_days > MAX_KEEP_DAYS {
            return Err(bad("webhooks.keep_days", "must be at most 36500 (0 keeps them for ever)"));
        }
        self.audit_keep()?;
        Ok(WebhookSettings {
            max_attempts: w.max_attempts,
            base_backoff: chrono::Duration::milliseconds(w.base_backoff_ms),
            max_backoff: chrono::Duration::milliseconds(w.max_backoff_ms),
            lease: chrono::Duration::milliseconds(w.timeout_ms as i64) + chrono::Duration::seconds(60),
            keep: (w.keep_days > 0).then(|| chrono::Duration::days(i64::from(w.keep_days))),
        })
    }

    /// How long bitácora records are kept (`None`: for ever).
    fn audit_keep(&self) -> Result<Option<chrono::Duration>, ConfigError> {
        match self.audit.keep_days {
            0 => Ok(None),
            n if n > MAX_KEEP_DAYS => Err(bad("audit.keep_days", "must be at most 36500 (0 keeps them for ever)")),
            n => Ok(Some(chrono::Duration::days(i64::from(n)))),
        }
    }

    fn reader(&self) -> Result<ReaderSettings, ConfigError> {
        let r = &self.reader;
        if r.interval_secs < 1 {
            return Err(bad("reader.interval_secs", "must be at least 1"));
        }
        if r.max_message_bytes < 1024 {
            return Err(bad("reader.max_message_bytes", "must be at least 1024"));
        }
        if r.timeout_secs < 1 {
            return Err(bad("reader.timeout_secs", "must be at least 1"));
        }
        if r.storage_dir.as_os_str().is_empty() {
            return Err(bad("reader.storage_dir", "must name a directory"));
        }
        if r.system.trim().is_empty() || r.system.len() > 100 {
            return Err(bad("reader.system", "must be 1 to 100 characters"));
        }
        if !(1..=1000).contains(&r.batch_size) {
            return Err(bad("reader.batch_size", "must be 1 to 1000"));
        }
        // Not bounded by the pool: each database call leases a connection
        // for itself only, and the new tickets are written in groups, which
        // are larger (fewer commits, less CPU per mail) the more mails are
        // in flight: on SQLite, 8 at once read 2,000 mails at ~850 mails/s
        // against ~600-730 with 4, whatever the pool's size.
        if !(1..=MAX_READER_CONCURRENCY).contains(&r.concurrency) {
            return Err(bad("reader.concurrency", format!("must be 1 to {MAX_READER_CONCURRENCY}")));
        }
        Ok(ReaderSettings {
            max_message_bytes: r.max_message_bytes,
            system: r.system.trim().to_string(),
            batch_size: r.batch_size,
            concurrency: r.concurrency,
        })
    }

    /// `reader.ca_file`, checked.
    fn reader_ca_file(&self) -> Result<Option<PathBuf>, ConfigError> {
        ca_file("reader.ca_file", &self.reader.ca_file)
    }

    fn public_url(&self) -> Result<url::Url, ConfigError> {
        let url =
            url::Url::parse(self.server.public_url.trim()).map_err(|e| bad_by("server.public_url", "not a URL", e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("server.public_url", "must be an http(s) URL such as https://mesa.example.com"));
        }
        Ok(url)
    }

    fn console(&self, public_url: &url::Url) -> Result<ConsoleSettings, ConfigError> {
        let c = &self.consola;
        if !(1..=24 * 60).contains(&c.idle_minutes) {
            return Err(bad("consola.idle_minutes", "must be 1 to 1440"));
        }
        if !(1..=24 * 30).contains(&c.max_hours) {
            return Err(bad("consola.max_hours", "must be 1 to 720"));
        }
        if c.counts_cache_ms > 60_000 {
            return Err(bad("consola.counts_cache_ms", "must be 0 to 60000"));
        }
        if !(6..=600).contains(&c.presence_secs) {
            return Err(bad("consola.presence_secs", "must be 6 to 600 (the pages report every 2 seconds)"));
        }
        let reset_url = public_url
            .join("/consola/restablecer")
            .map_err(|e| bad_by("server.public_url", "cannot make the console's links", e))?;
        Ok(ConsoleSettings {
            idle: chrono::Duration::minutes(c.idle_minutes),
            max: chrono::Duration::hours(c.max_hours),
            reset_url: reset_url.to_string(),
            counts_cache: std::time::Duration::from_millis(c.counts_cache_ms),
            presence: chrono::Duration::seconds(c.presence_secs),
        })
    }

    fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self.log.format.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(bad("log.format", format!("unknown format {other:?}: use \"text\" or \"json\""))),
        }
    }

    /// Checks every value, once, before the server does anything, and
    /// gives them parsed.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let profile = self.profile()?;
        let db_url = self.db_url()?;
        let db = self.db_options()?;
        let keys = self.keys()?;
        let sso = self.sso()?;
        let smtp = self.smtp()?;
        let synology = self.synology()?;
        let ingest = self.ingest()?;
        let outbox = self.outbox()?;
        let webhooks = self.webhooks()?;
        let sla_poll = self.sla_poll()?;
        let audit_keep = self.audit_keep()?;
        let limits = self.limits()?;
        let http = self.http_policy()?;
        let reader = self.reader()?;
        let reader_ca_file = self.reader_ca_file()?;
        let log_format = self.log_format()?;
        let public_url = self.public_url()?;
        let console = self.console(&public_url)?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| bad_by("log.level", "not a filter", e))?;
        Ok(Config {
            settings: self.clone(),
            profile,
            db_url,
            db,
            keys,
            sso,
            smtp,
            synology,
            ingest,
            outbox,
            webhooks,
            webhook_timeout: Duration::from_millis(self.webhooks.timeout_ms),
            sla_poll,
            audit_keep,
            limits,
            http,
            reader,
            reader_ca_file,
            log_format,
            public_url,
            console,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A file of extra trusted root certificates: empty for none, otherwise a
/// readable file holding at least one PEM certificate.
fn ca_file(key: &str, value: &str) -> Result<Option<PathBuf>, ConfigError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(value.trim());
    let text =
        std::fs::read_to_string(&path).map_err(|e| bad_by(key, &format!("cannot read {}", path.display()), e))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad(key, format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(Some(path))
}

/// Turns the config crate's errors into one line naming the key.
fn from_config_error(e: config::ConfigError) -> ConfigError {
    match &e {
        config::ConfigError::Type { key: Some(key), unexpected, expected, .. } => {
            bad(key, format!("expected {expected}, found {unexpected}"))
        }
        config::ConfigError::NotFound(key) => bad(key, "missing"),
        _ => {
            let text = e.to_string();
            // "... for key `database.port`" is how the crate names keys in messages.
            let key = text.split('`').nth(1).unwrap_or("configuration").to_string();
            bad_by(&key, "cannot be read", e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.profile().unwrap(), Profile::Dev);
        s.validate().unwrap();
    }

    /// No `Debug` of the settings, as given or validated, prints a secret.
    #[test]
    fn secrets_never_print() {
        let mut s = Settings::load(None).unwrap();
        let secrets = ["ab".repeat(32), "cd".repeat(32), "ef".repeat(32), "Smtp-Clave-9".into(), "bot-7731".into()];
        s.keys.consumer_hmac = secrets[0].clone().into();
        s.keys.secret_box = secrets[1].clone().into();
        s.keys.jwt = secrets[2].clone().into();
        (s.smtp.username, s.smtp.password) = ("mesa".into(), secrets[3].clone().into());
        s.synology.bot_token = secrets[4].clone().into();
        s.synology.outgoing_token = secrets[4].clone().into();
        let config = s.validate().unwrap();
        assert_eq!(config.smtp.password.as_ref().map(|p| p.expose_secret().to_string()), Some(secrets[3].clone()));
        for printed in
            [format!("{s:?}"), format!("{config:?}"), format!("{:?}", config.smtp), format!("{:?}", config.synology)]
        {
            assert!(printed.contains("REDACTED"), "{printed}");
            for secret in &secrets {
                assert!(!printed.contains(secret.as_str()), "{secret} printed: {printed}");
            }
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = Settings::load(None).unwrap();
        s.database.url = "postgres://x/y".into();
        assert_eq!(s.validate().unwrap_err().key, "database.url");
        let mut s = Settings::load(None).unwrap();
        s.profile = "prod".into();
        assert_eq!(s.validate().unwrap_err().key, "keys.consumer_hmac");
        s.keys.consumer_hmac = "ab".repeat(32).into();
        assert_eq!(s.validate().unwrap_err().key, "keys.secret_box");
        s.keys.secret_box = "xyz".into();
        assert_eq!(s.validate().unwrap_err().key, "keys.secret_box");
        s.keys.secret_box = "cd".repeat(32).into();
        assert_eq!(s.validate().unwrap_err().key, "keys.jwt");
        s.keys.jwt = "ef".repeat(32).into();
        s.validate().unwrap();
        s.smtp.security = "ssl3".into();
        assert_eq!(s.validate().unwrap_err().key, "smtp.security");
        s.smtp.security = "starttls".into();
        s.smtp.from = "no es una dirección".into();
        assert_eq!(s.validate().unwrap_err().key, "smtp.from");
        s.smtp.from = "Ayuda <ayuda@example.com>".into();
        s.sso.reset_url = "ftp://x".into();
        assert_eq!(s.validate().unwrap_err().key, "sso.reset_url");
        s.sso.reset_url = "https://ayuda.example.com/restablecer".into();
        s.sso.token_ttl_minutes = 0;
        assert_eq!(s.validate().unwrap_err().key, "sso.token_ttl_minutes");
        s.sso.token_ttl_minutes = 60;
        s.validate().unwrap();
        s.server.public_url = "mesa.example.com".into();
        assert_eq!(s.validate().unwrap_err().key, "server.public_url");
        s.server.public_url = "https://mesa.example.com".into();
        assert!(s.validate().unwrap().public_url.scheme() == "https");
        s.consola.idle_minutes = 0;
        assert_eq!(s.validate().unwrap_err().key, "consola.idle_minutes");
        s.consola.idle_minutes = 30;
        s.consola.max_hours = 721;
        assert_eq!(s.validate().unwrap_err().key, "consola.max_hours");
        s.consola.max_hours = 12;
        s.consola.counts_cache_ms = 60_001;
        assert_eq!(s.validate().unwrap_err().key, "consola.counts_cache_ms");
        s.consola.counts_cache_ms = 2000;
        s.consola.presence_secs = 5;
        assert_eq!(s.validate().unwrap_err().key, "consola.presence_secs");
        s.consola.presence_secs = 30;
        s.validate().unwrap();
        s.log.format = "xml".into();
        assert_eq!(s.validate().unwrap_err().key, "log.format");
        s.log.format = "text".into();
        s.smtp.ca_file = "/no/such/ca.pem".into();
        assert_eq!(s.validate().unwrap_err().key, "smtp.ca_file");
        s.smtp.ca_file = String::new();
        s.reader.ca_file = "/etc/hostname".into();
        assert_eq!(s.validate().unwrap_err().key, "reader.ca_file");
    }

    #[test]
    fn the_pool_defaults_by_backend_and_the_readers_do_not_follow_it() {
        let mut s = Settings::load(None).unwrap();
        assert_eq!((s.db_options().unwrap().max_connections, s.reader().unwrap().concurrency), (4, 8), "SQLite");
        s.database.url = "mysql://root@127.0.0.1:3306/x".into();
        assert_eq!((s.db_options().unwrap().max_connections, s.reader().unwrap().concurrency), (8, 8), "MySQL");
        s.database.max_connections = Some(3);
        assert_eq!(s.db_options().unwrap().max_connections, 3);
        for bad_value in [0, MAX_READER_CONCURRENCY + 1] {
            s.reader.concurrency = bad_value;
            assert_eq!(s.reader().unwrap_err().key, "reader.concurrency");
        }
        s.reader.concurrency = MAX_READER_CONCURRENCY;
        assert_eq!(s.reader().unwrap().concurrency, MAX_READER_CONCURRENCY);
        s.database.max_connections = Some(0);
        assert_eq!(s.db_options().unwrap_err().key, "database.max_connections");
    }

    #[test]
    fn webhook_settings_are_checked_and_lease_past_the_timeout() {
        let s = Settings::load(None).unwrap();
        let w = s.webhooks().unwrap();
        assert_eq!((w.max_attempts, w.base_backoff.num_seconds(), w.max_backoff.num_hours()), (10, 10, 1));
        assert_eq!(w.lease.num_seconds(), 70, "the timeout and a minute");
        assert_eq!(w.keep.map(|k| k.num_days()), Some(30));
        let mut forever = Settings::load(None).unwrap();
        forever.webhooks.keep_days = 0;
        assert_eq!(forever.webhooks().unwrap().keep, None, "0 keeps them for ever");
        assert_eq!(s.audit_keep().unwrap(), None, "the bitácora is kept for ever unless told");
        forever.audit.keep_days = 365;
        assert_eq!(forever.audit_keep().unwrap().map(|k| k.num_days()), Some(365));
        for (key, tweak) in [
            ("webhooks.poll_interval_ms", (|s: &mut Settings| s.webhooks.poll_interval_ms = 5) as fn(&mut Settings)),
            ("webhooks.timeout_ms", |s| s.webhooks.timeout_ms = 50),
            ("webhooks.max_attempts", |s| s.webhooks.max_attempts = 0),
            ("webhooks.base_backoff_ms", |s| s.webhooks.base_backoff_ms = 0),
            ("webhooks.max_backoff_ms", |s| s.webhooks.max_backoff_ms = 9_999),
            ("webhooks.keep_days", |s| s.webhooks.keep_days = 36_501),
            ("audit.keep_days", |s| s.audit.keep_days = 36_501),
        ] {
            let mut s = Settings::load(None).unwrap();
            tweak(&mut s);
            assert_eq!(s.validate().unwrap_err().key, key);
        }
    }

    #[test]
    fn network_lists_load_from_the_file_and_the_environment() {
        let s = Settings::load(None).unwrap();
        let p = s.http_policy().unwrap();
        assert!(p.trusted_proxies.is_empty());
        assert_eq!(format!("{:?}", p.metrics_allow), "[127.0.0.0/8, ::1/128]");
        assert_eq!(p.cors_origins, CorsOrigins::Any);
        // What an environment variable gives: one string.
        let list: Vec<String> =
            string_list(serde::de::value::StrDeserializer::<serde::de::value::Error>::new("10.0.0.0/8, 192.168.1.1"))
                .unwrap();
        assert_eq!(list, ["10.0.0.0/8", "192.168.1.1"]);
        let mut s = Settings::load(None).unwrap();
        s.server.trusted_proxies = vec!["10.0.0.0/33".into()];
        assert_eq!(s.validate().unwrap_err().key, "server.trusted_proxies");
        let mut s = Settings::load(None).unwrap();
        s.server.metrics_allow = vec!["localhost".into()];
        assert_eq!(s.validate().unwrap_err().key, "server.metrics_allow");
        let mut s = Settings::load(None).unwrap();
        s.server.cors_allowed_origins = vec!["https://a.example/x".into()];
        assert_eq!(s.validate().unwrap_err().key, "server.cors_allowed_origins");
    }
}
