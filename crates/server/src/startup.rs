//! Building and running the server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};
use helpdesk_db::{Backend, Db};
use helpdesk_domain::ports::{Adapters, Clock, SystemClock};
use helpdesk_http::{AppState, Wiring};
use helpdesk_notify_smtp::SmtpMailer;
use helpdesk_notify_synology::SynologyClient;

use crate::hashing::BlockingArgon2;
use crate::worker::Stop;
use helpdesk_db::FileSpool;

/// The adapters the server runs with.
pub struct Production;

impl Adapters for Production {
    type Store = Db;
    type Mail = SmtpMailer;
    type Chat = SynologyClient;
}

use crate::settings::{Profile, Settings};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::settings::ConfigError),
    #[error("configuration error: database.url: {0}")]
    Database(String),
    #[error("cannot migrate the database: {0}")]
    Migrate(String),
    #[error("configuration error: server.host/server.port: cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot seed demo data: {0}")]
    Seed(String),
    #[error("configuration error: audit.spool_dir: {0}")]
    Spool(String),
    #[error("configuration error: smtp: {0}")]
    Smtp(String),
    #[error("configuration error: synology.base_url: {0}")]
    Synology(String),
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    pub db: Arc<Db>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Groups of bitácora records committing at once: MySQL merges the flushes
/// of concurrent commits, so records arriving during a commit start their own
/// (up to half the pool, at most 4); SQLite has one writer, so one.
fn audit_writes(backend: Backend, max_connections: usize) -> usize {
    match backend {
        Backend::Mysql => (max_connections / 2).clamp(1, 4),
        Backend::Sqlite => 1,
    }
}

/// Migrates (when configured) and seeds the dev data under the start-up
/// lock, so that servers starting together on an empty database do it one
/// after the other.
async fn prepare_db(settings: &Settings, db: &Arc<Db>, keys: &helpdesk_http::Keys) -> Result<(), StartError> {
    let seed = settings.profile()? == Profile::Dev && settings.seed.demo;
    if !settings.database.migrate_on_start && !seed {
        return Ok(());
    }
    let lock = db.startup_lock().await.map_err(|e| StartError::Migrate(e.to_string()))?;
    let prepared = async {
        if settings.database.migrate_on_start {
            let applied = db.migrate_holding(&lock).await.map_err(|e| StartError::Migrate(e.to_string()))?;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        if seed {
            crate::seed::seed_demo(db, keys).await.map_err(|e| StartError::Seed(e.to_string()))?;
        }
        Ok(())
    }
    .await;
    lock.release().await;
    prepared
}

/// Opens the store described by the settings (no I/O yet for MySQL).
pub fn open_db(settings: &Settings) -> Result<Db, StartError> {
    let url = settings.db_url()?;
    let opts = settings.db_options()?;
    Db::connect(&url, &opts).map_err(|e| StartError::Database(e.to_string()))
}

impl Application {
    /// Validates the settings, opens the store, migrates it (when
    /// configured), seeds the dev data, and binds the listener.
    ///
    /// A database that is down at start does not stop the server when
    /// migrations are off: `/ready` answers 503 until it comes back.
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// `build` with another clock (tests move time without sleeping).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        settings.validate()?;
        let db = Arc::new(open_db(&settings)?);
        let keys = settings.keys()?;
        prepare_db(&settings, &db, &keys).await?;
        let spool = FileSpool::open(&settings.audit.spool_dir, settings.audit.spool_max_bytes)
            .map_err(|e| StartError::Spool(e.to_string()))?;
        let mailer = SmtpMailer::new(&settings.smtp()?).map_err(|e| StartError::Smtp(e.to_string()))?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let chat = SynologyClient::new(&settings.synology()?).map_err(|e| StartError::Synology(e.to_string()))?;
        let state = AppState::<Production>::new(Wiring {
            store: db.clone(),
            mailer: Arc::new(mailer),
            chat: Arc::new(chat),
            hasher: Arc::new(BlockingArgon2::new(cores)),
            clock,
            keys: keys.clone(),
            sso: settings.sso()?,
            ingest: settings.ingest()?,
            outbox: settings.outbox()?,
            message_id_domain: settings.ingest.message_id_domain.clone(),
            bot_outgoing_token: settings.synology.outgoing_token.clone(),
            limits: settings.limits()?,
            consumer_cache: Duration::from_secs(settings.server.consumer_cache_secs),
            audit_writes: audit_writes(db.backend(), settings.database.max_connections),
            audit_spool: Some(Arc::new(spool)),
        })
        .with_policy(settings.http_policy()?)
        .into_data();
        let (stop, stopped) = Stop::new();
        let workers = vec![
            tokio::spawn(crate::worker::outbox(
                state.outbox.clone(),
                Duration::from_millis(settings.outbox.poll_interval_ms),
                stopped.clone(),
            )),
            tokio::spawn(crate::worker::audit_spool(
                state.audit.clone(),
                db.clone(),
                Duration::from_millis(settings.audit.spool_drain_interval_ms.max(1)),
                stopped,
            )),
        ];

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|e| StartError::Bind(address.clone(), e))?;
        let port = listener.local_addr().map_err(|e| StartError::Bind(address.clone(), e))?.port();
        let http_workers = match settings.server.workers {
            0 => cores,
            n => n,
        };
        let server = HttpServer::new(move || {
            App::new().app_data(state.clone()).configure(helpdesk_http::configure::<Production>)
        })
        .workers(http_workers)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(30))
        .listen(listener)
        .map_err(|e| StartError::Bind(address.clone(), e))?
        .run();
        let backend = match db.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Mysql => "mysql",
        };
        tracing::info!(%address, port, backend, profile = ?settings.profile()?, "listening");
        Ok(Application { port, server, db, workers, stop })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests and lets
    /// the background workers finish their round (each database call in it
    /// is bounded by the database deadlines).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        result
    }
}
