//! Building and running the server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use actix_web::{App, HttpServer};
use helpdesk_domain::ports::{Adapters, Clock};
use helpdesk_domain::services::WebhookDispatcher;
use helpdesk_http::audit::WorkerAudit;
use tokio_util::task::TaskTracker;

use crate::settings::{Config, Settings};
use crate::wiring::{Parts, app_state, cores, web_state};
pub use crate::wiring::{Production, StartError, open_db};
use crate::worker::Stop;

/// A built server, bound to its port, not yet running, over the adapters
/// `A` ([`Production`] unless a test swapped one: see [`Parts`]).
pub struct Application<A: Adapters = Production> {
    port: u16,
    server: Server,
    /// The store the server runs on.
    pub store: Arc<A::Store>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// What handlers left running after their answer.
    tasks: TaskTracker,
    /// How long shutdown waits for `tasks`.
    shutdown_timeout: Duration,
}

impl Application {
    /// The production server: the settings validated, [`Parts::production`]
    /// (opens, migrates and seeds the store, opens the notifiers), then
    /// [`Application::build_with`].
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        Application::start(settings.validate()?).await
    }

    /// `build` from settings already validated.
    pub async fn start(config: Config) -> Result<Application, StartError> {
        let parts = Parts::production(&config).await?;
        Application::build_with(config, parts).await
    }

    /// `build` with another clock (tests move time without sleeping).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        let config = settings.validate()?;
        let parts = Parts::production(&config).await?.with_clock(clock);
        Application::build_with(config, parts).await
    }
}

impl<A: Adapters> Application<A> {
    /// Builds the services over `parts` ([`app_state`]), starts the
    /// background workers, and binds the listener.
    pub async fn build_with(config: Config, parts: Parts<A>) -> Result<Application<A>, StartError> {
        let settings = &config.settings;
        let keys = config.keys.clone();
        let store = parts.store.clone();
        let (backend, audit_writes) = (parts.backend, parts.audit_writes);
        let webhooks = Arc::new(WebhookDispatcher::new(
            store.clone(),
            parts.webhooks.clone(),
            keys.secret_box.clone(),
            parts.clock.clone(),
            config.webhooks.clone(),
        ));
        let tasks = TaskTracker::new();
        let state = web::Data::new(app_state(&config, keys, parts, tasks.clone()));
        let pages = web::Data::new(web_state(&config, &state));
        let (stop, stopped) = Stop::new();
        let counted = state.clone();
        let mut workers = vec![
            tokio::spawn(crate::worker::webhook_retention(webhooks.clone(), stopped.clone())),
            tokio::spawn(crate::worker::webhooks(
                webhooks,
                Duration::from_millis(settings.webhooks.poll_interval_ms),
                stopped.clone(),
                move |r| counted.metrics.count_webhook_deliveries(r.sent, r.retried, r.failed),
            )),
            tokio::spawn(crate::worker::outbox(
                state.outbox.clone(),
                Duration::from_millis(settings.outbox.poll_interval_ms),
                stopped.clone(),
            )),
            tokio::spawn(crate::worker::sla(state.clone(), config.sla_poll, stopped.clone())),
            tokio::spawn(crate::worker::throttle_cleanup(state.sso.clone(), stopped.clone())),
            tokio::spawn(crate::worker::presence_cleanup(pages.clone(), stopped.clone())),
            tokio::spawn(crate::worker::audit_spool(
                state.audit.clone(),
                store.clone(),
                Duration::from_millis(settings.audit.spool_drain_interval_ms.max(1)),
                stopped.clone(),
            )),
            tokio::spawn(crate::worker::refused_calls(state.audit.clone(), state.clock.clone(), stopped.clone())),
        ];
        if let Some(keep) = config.audit_keep {
            let (audit, clock) = (state.audit.clone(), state.clock.clone());
            workers.push(tokio::spawn(crate::worker::audit_retention(audit, clock, keep, stopped)));
        }

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|e| StartError::Bind(address.clone(), e))?;
        let port = listener.local_addr().map_err(|e| StartError::Bind(address.clone(), e))?.port();
        let http_workers = match settings.server.workers {
            0 => cores(),
            n => n,
        };
        // The console first: the API's scope answers every other path.
        let server = HttpServer::new(move || {
            // Runs on each HTTP worker's runtime: its own bitácora writer
            // there (a request's record then wakes no other thread).
            let (audit, writer) = state.audit.with_own_writer(audit_writes);
            actix_web::rt::spawn(writer.run());
            App::new()
                .app_data(web::Data::new(WorkerAudit(audit)))
                .app_data(state.clone())
                .app_data(pages.clone())
                .configure(helpdesk_web::configure::<A>)
                .configure(helpdesk_http::configure::<A>)
        })
        .workers(http_workers)
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(30))
        .listen(listener)
        .map_err(|e| StartError::Bind(address.clone(), e))?
        .run();
        tracing::info!(%address, port, backend, profile = ?config.profile, "listening");
        let shutdown_timeout = Duration::from_secs(settings.server.shutdown_timeout_secs);
        Ok(Application { port, server, store, workers, stop, tasks, shutdown_timeout })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests, waits
    /// for the work they left running (the password-reset e-mail, a retried
    /// Synology reply, a delivery attempt; at most
    /// `server.shutdown_timeout_secs`), and lets the background workers
    /// finish their round (each database call in it is bounded by the
    /// database deadlines).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop.send(true);
        self.tasks.close();
        if tokio::time::timeout(self.shutdown_timeout, self.tasks.wait()).await.is_err() {
            tracing::warn!(left = self.tasks.len(), "background tasks still running at shutdown, abandoned");
        }
        for worker in self.workers {
            let _ = worker.await;
        }
        result
    }
}
