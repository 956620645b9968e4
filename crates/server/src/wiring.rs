//! What the application is built from ([`Parts`]: the adapters, one per
//! port) and how the use-case services are built over them ([`app_state`]).
//!
//! `Parts::production` opens the real adapters; a test takes those and
//! swaps one (`parts.with_mailer(fake)`), which changes the type that names
//! the adapters from [`Production`] to [`With`]`<Db, Fake, SynologyClient>`.
//! The webhook sender is held as `Arc<dyn WebhookSender>`, so swapping it
//! (`with_webhook_sender`) changes no type.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use helpdesk_db::{Backend, Db, FileSpool};
use helpdesk_domain::Cause;
use helpdesk_domain::ports::{
    Adapters, AuditSpool, ChatNotifier, Clock, MailNotifier, PasswordHasher, Store, SystemClock, WebhookSender,
};
use helpdesk_domain::services::*;
use helpdesk_http::{AppState, metrics};
use helpdesk_notify_smtp::SmtpMailer;
use helpdesk_notify_synology::SynologyClient;
use helpdesk_notify_webhook::HttpWebhookSender;
use helpdesk_web::{Site, WebState};
use tokio_util::task::TaskTracker;

use crate::hashing::BlockingArgon2;
use crate::settings::{Config, Keys, Profile};

/// The adapters named by their three types: what a test gets when it swaps
/// one of [`Production`]'s (`With<Db, Fake, SynologyClient>`).
pub struct With<S, M, C>(Names<S, M, C>);

/// Holds no value of the three types, only their names (and stays `Send`
/// and `Sync` whatever they are).
type Names<S, M, C> = PhantomData<fn() -> (S, M, C)>;

impl<S: Store, M: MailNotifier, C: ChatNotifier> Adapters for With<S, M, C> {
    type Store = S;
    type Mail = M;
    type Chat = C;
}

/// The adapters an [`Application`](crate::Application) is built with.
pub struct Parts<A: Adapters> {
    pub store: Arc<A::Store>,
    pub mailer: Arc<A::Mail>,
    pub chat: Arc<A::Chat>,
    /// Posts outgoing webhooks.
    pub webhooks: Arc<dyn WebhookSender>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Where bitácora records wait while the store cannot take them.
    pub audit_spool: Option<Arc<dyn AuditSpool>>,
    /// How many groups of bitácora records may commit at once
    /// (`database.audit_writers` on MySQL; one on SQLite, its only writer).
    pub audit_writes: usize,
    /// The store's kind, for the start-up log (`sqlite`, `mysql`).
    pub backend: &'static str,
}

impl Parts<Production> {
    /// The real adapters: opens the store, migrates it (when configured) and seeds the dev data under the start-up lock,
    /// opens the bitácora's spool, the SMTP mailer, the Synology client,
    /// the webhook sender.
    ///
    /// A database that is down at start does not stop the server when
    /// migrations are off: `/ready` answers 503 until it comes back.
    pub async fn production(config: &Config) -> Result<Self, StartError> {
        let settings = &config.settings;
        let db = Arc::new(open_db(config)?);
        prepare_db(config, &db).await?;
        let spool = FileSpool::open(&settings.audit.spool_dir, settings.audit.spool_max_bytes)
            .map_err(|e| StartError::Spool(cause(e)))?;
        let mailer = SmtpMailer::new(&config.smtp).map_err(|e| StartError::Smtp(cause(e)))?;
        let chat = SynologyClient::new(&config.synology).map_err(|e| StartError::Synology(cause(e)))?;
        let webhooks = HttpWebhookSender::new(config.webhook_timeout).map_err(|e| StartError::Webhooks(cause(e)))?;
        Ok(Parts {
            audit_writes: match db.backend() {
                Backend::Mysql => settings.database.audit_writers,
                Backend::Sqlite => 1,
            },
            backend: match db.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Mysql => "mysql",
            },
            store: db,
            mailer: Arc::new(mailer),
            chat: Arc::new(chat),
            webhooks: Arc::new(webhooks),
            clock: Arc::new(SystemClock),
            hasher: Arc::new(BlockingArgon2::new(cores())),
            audit_spool: Some(Arc::new(spool)),
        })
    }
}

impl<A: Adapters> Parts<A> {
    /// The same parts with another mailer.
    pub fn with_mailer<M: MailNotifier>(self, mailer: Arc<M>) -> Parts<With<A::Store, M, A::Chat>> {
        let Parts { store, mailer: _, chat, webhooks, clock, hasher, audit_spool, audit_writes, backend } = self;
        Parts { store, mailer, chat, webhooks, clock, hasher, audit_spool, audit_writes, backend }
    }

    /// The same parts with another Synology Chat client.
    pub fn with_chat<C: ChatNotifier>(self, chat: Arc<C>) -> Parts<With<A::Store, A::Mail, C>> {
        let Parts { store, mailer, chat: _, webhooks, clock, hasher, audit_spool, audit_writes, backend } = self;
        Parts { store, mailer, chat, webhooks, clock, hasher, audit_spool, audit_writes, backend }
    }

    /// The same parts with another webhook sender.
    pub fn with_webhook_sender(self, webhooks: Arc<dyn WebhookSender>) -> Self {
        Parts { webhooks, ..self }
    }

    /// The same parts with another clock (tests move time without sleeping).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Parts { clock, ..self }
    }

    /// The same parts with another password hasher.
    pub fn with_hasher(self, hasher: Arc<dyn PasswordHasher>) -> Self {
        Parts { hasher, ..self }
    }
}

/// The machine's cores (one when unknown).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Builds every use-case service over `parts`, as the settings say, and
/// spawns the bitácora's writer on the current tokio runtime (call it inside
/// one). `tasks` is the set the handlers leave work running in.
pub fn app_state<A: Adapters>(config: &Config, keys: Keys, parts: Parts<A>, tasks: TaskTracker) -> AppState<A> {
    let settings = &config.settings;
    let Parts { store, mailer, chat, webhooks: _, clock, hasher, audit_spool, audit_writes, backend: _ } = parts;
    let (audit, audit_writer) = match audit_spool {
        Some(spool) => AuditService::with_spool(store.clone(), spool),
        None => AuditService::new(store.clone()),
    };
    let audit = audit.with_refused_burst(settings.audit.refused_burst);
    tokio::spawn(audit_writer.concurrent_writes(audit_writes).run());
    let ids = MessageIdSigner::new(keys.consumer_hmac.clone(), &settings.ingest.message_id_domain);
    let ingest = config.ingest.clone();
    AppState {
        tickets: TicketService::new(
            store.clone(),
            ids.clone(),
            clock.clone(),
            ingest.chat_to_users,
            ingest.setup_cache,
        )
        .with_own_addresses(config.own()),
        sla: Arc::new(SlaService::new(store.clone(), clock.clone(), ingest.setup_cache, ingest.chat_to_users)),
        attachments_dir: settings.reader.storage_dir.clone(),
        health: HealthService::new(
            store.clone(),
            clock.clone(),
            Duration::from_secs(settings.server.ready_probe_secs),
            settings.server.body_limit_bytes as u64,
        ),
        ingest: IngestService::new(store.clone(), ids.clone(), clock.clone(), ingest).with_linger(
            Duration::from_micros(settings.ingest.batch_linger_us),
            Arc::new(|wait| Box::pin(tokio::time::sleep(wait))),
        ),
        outbox: Arc::new(
            OutboxService::new(
                store.clone(),
                mailer.clone(),
                chat.clone(),
                keys.secret_box.clone(),
                ids,
                clock.clone(),
                config.outbox.clone(),
            )
            .with_own_addresses(config.own()),
        ),
        bot: Arc::new(BotService::new(store.clone(), chat, config.bot_outgoing_token())),
        metrics: metrics::Metrics::default(),
        access: AccessService::new(store.clone(), keys.consumer_hmac, clock.clone())
            .with_cache(Duration::from_secs(settings.server.consumer_cache_secs)),
        audit,
        directory: DirectoryService::new(store.clone(), clock.clone())
            .with_cache(Duration::from_millis(settings.server.directory_cache_ms)),
        mail_accounts: MailAccountService::new(store.clone(), keys.secret_box),
        adi: AdiService::new(store.clone(), keys.tokens.clone(), clock.clone()),
        sso: Arc::new(SsoService::new(store.clone(), hasher, keys.tokens, clock.clone(), config.sso.clone())),
        mailer,
        store,
        clock,
        limits: config.limits.clone(),
        policy: Arc::new(config.http.clone()),
        tasks,
    }
}

/// The console's services, over the same store, clock and SSO service as
/// the API's (`state`), as the settings say.
pub fn web_state<A: Adapters>(config: &Config, state: &AppState<A>) -> WebState<A> {
    let settings = &config.settings;
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let ids = MessageIdSigner::new(config.keys.consumer_hmac.clone(), &settings.ingest.message_id_domain);
    let policy = state.policy.clone();
    WebState {
        console: ConsoleService::new(store.clone(), state.sso.clone(), clock.clone(), config.console.clone()),
        tickets: TicketService::new(
            store.clone(),
            ids,
            clock.clone(),
            config.ingest.chat_to_users,
            config.ingest.setup_cache,
        )
        .with_own_addresses(config.own())
        .with_count_cache(config.console.counts_cache),
        admin: AdminService::new(store.clone()),
        directory: DirectoryService::new(store, clock.clone())
            .with_cache(Duration::from_millis(settings.server.directory_cache_ms)),
        audit: state.audit.clone(),
        mailer: state.mailer.clone(),
        tasks: state.tasks.clone(),
        clock,
        site: Site::new(&config.public_url),
        attachments_dir: state.attachments_dir.clone(),
        client_ip: Arc::new(move |req| policy.client_addr(req.peer_addr().map(|a| a.ip()), req.headers())),
    }
}

/// The adapters the server runs with.
pub struct Production;

impl Adapters for Production {
    type Store = Db;
    type Mail = SmtpMailer;
    type Chat = SynologyClient;
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::settings::ConfigError),
    #[error("configuration error: database.url")]
    Database(#[source] Cause),
    #[error("cannot migrate the database")]
    Migrate(#[source] Cause),
    #[error("configuration error: server.host/server.port: cannot listen on {0}")]
    Bind(String, #[source] std::io::Error),
    #[error("cannot seed demo data")]
    Seed(#[source] Cause),
    #[error("configuration error: audit.spool_dir")]
    Spool(#[source] Cause),
    #[error("configuration error: smtp")]
    Smtp(#[source] Cause),
    #[error("configuration error: synology.base_url")]
    Synology(#[source] Cause),
    #[error("configuration error: webhooks")]
    Webhooks(#[source] Cause),
}

/// An error kept as a cause.
fn cause(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Cause {
    Arc::from(e.into())
}

/// Migrates (when configured) and seeds the dev data under the start-up
/// lock, so that servers starting together on an empty database do it one
/// after the other.
pub(crate) async fn prepare_db(config: &Config, db: &Arc<Db>) -> Result<(), StartError> {
    let settings = &config.settings;
    let seed = config.profile == Profile::Dev && settings.seed.demo;
    if !settings.database.migrate_on_start && !seed {
        return Ok(());
    }
    let lock = db.startup_lock().await.map_err(|e| StartError::Migrate(cause(e)))?;
    let prepared = async {
        if settings.database.migrate_on_start {
            let applied = db.migrate_holding(&lock).await.map_err(|e| StartError::Migrate(cause(e)))?;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        if seed {
            crate::seed::seed_demo(db, &config.keys).await.map_err(|e| StartError::Seed(cause(e)))?;
        }
        Ok::<(), StartError>(())
    }
    .await;
    lock.release().await;
    prepared?;
    // Messages stored before the search's word table existed: indexed once,
    // a batch per transaction (safe to interrupt, and to run on several
    // servers at once: rows are inserted if absent).
    let indexed = db.index_backlog().await.map_err(|e| StartError::Migrate(cause(e)))?;
    if indexed > 0 {
        tracing::info!(indexed, "messages added to the search index");
    }
    // Stored data older code wrote in a form the rules no longer accept,
    // made right once (recorded as done; safe on several servers at once).
    let now = chrono::Utc::now().naive_utc();
    let repaired = db.repair_data(now).await.map_err(|e| StartError::Migrate(cause(e)))?;
    if repaired != helpdesk_db::Repaired::default() {
        tracing::info!(?repaired, "stored data repaired");
    }
    Ok(())
}

/// Opens the store described by the settings (no I/O yet for MySQL).
pub fn open_db(config: &Config) -> Result<Db, StartError> {
    Db::connect(&config.db_url, &config.db).map_err(|e| StartError::Database(cause(e)))
}
