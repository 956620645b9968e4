//! The mail-reading channel as a process (`helpdesk-server read-mail`):
//! the domain's reader wired to IMAP, mail-parser, the storage directory
//! and the database, run on an interval until stopped.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_db::Db;
use helpdesk_domain::ports::Clock;
use helpdesk_domain::services::{IngestService, MessageIdSigner, ReaderParts, ReaderService, RunReport};
use helpdesk_mail_imap::{DirFileStore, ImapOptions, ImapSource, MailParserDecoder};

use crate::settings::{Config, ConfigError};

pub type Reader = ReaderService<Db, ImapSource>;

/// Ingestion as the reader and the admin commands run it (without the
/// server's batch linger).
pub fn ingest(config: &Config, db: Arc<Db>, clock: Arc<dyn Clock>) -> IngestService<Db> {
    let ids = MessageIdSigner::new(config.keys.consumer_hmac.clone(), &config.settings.ingest.message_id_domain);
    IngestService::new(db, ids, clock, config.ingest.clone())
}

/// The reader with the production adapters.
pub fn build(config: &Config, db: Arc<Db>, clock: Arc<dyn Clock>) -> Result<Reader, ConfigError> {
    let ingest = Arc::new(ingest(config, db.clone(), clock.clone()));
    let r = &config.settings.reader;
    let source = ImapSource::new(ImapOptions {
        timeout: Duration::from_secs(r.timeout_secs),
        allow_plaintext: r.allow_plaintext,
        ca_file: config.reader_ca_file.clone(),
        ..ImapOptions::default()
    })
    .map_err(|e| ConfigError {
        key: "reader.ca_file".into(),
        message: "not usable".into(),
        cause: Some(Arc::new(e)),
    })?;
    Ok(ReaderService::new(ReaderParts {
        repo: db,
        ingest,
        source: Arc::new(source),
        decoder: Arc::new(MailParserDecoder),
        files: Arc::new(DirFileStore::new(&r.storage_dir)),
        secrets: config.keys.secret_box.clone(),
        clock,
        settings: config.reader.clone(),
    }))
}

/// Logs a run: one line per account that listed mail or failed, and the
/// totals (which add up: listed = imported + duplicate + held + quarantined
/// + vanished + deferred).
pub fn log_report(report: &RunReport) {
    for a in &report.accounts {
        let c = a.counts;
        if let Some(error) = &a.error {
            tracing::warn!(account = a.account_id, user = %a.user, %error, listed = c.listed, imported = c.imported,
                duplicate = c.duplicate, held = c.held, quarantined = c.quarantined, deferred = c.deferred,
                "mail account read failed");
        } else if c.listed > 0 {
            tracing::info!(account = a.account_id, user = %a.user, listed = c.listed, imported = c.imported,
                duplicate = c.duplicate, held = c.held, quarantined = c.quarantined, vanished = c.vanished,
                "mail account read");
        }
    }
    let t = report.totals();
    tracing::info!(
        accounts = report.accounts.len(),
        failed_accounts = report.failed_accounts(),
        listed = t.listed,
        imported = t.imported,
        duplicate = t.duplicate,
        held = t.held,
        quarantined = t.quarantined,
        vanished = t.vanished,
        deferred = t.deferred,
        "mail read"
    );
}

/// Reads every account once (`once`) or every `interval` until SIGINT or
/// SIGTERM. A stop request waits for the mail in hand, never cuts it.
pub async fn run(reader: Reader, interval: Duration, once: bool) -> anyhow::Result<RunReport> {
    let mut stop = Box::pin(stop_requested());
    loop {
        let report = reader.run_once().await?;
        log_report(&report);
        if once {
            return Ok(report);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => return Ok(report),
        }
    }
}

/// SIGINT or SIGTERM.
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
