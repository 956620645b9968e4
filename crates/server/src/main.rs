//! `helpdesk-server`: runs the API (the default) or an admin command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use helpdesk_domain::ports::SystemClock;
use helpdesk_server::admin::{
    self, ConsumerCmd, DepartmentCmd, HeldCmd, MailAccountCmd, ProductCmd, QuarantineCmd, SlaCmd, SystemCmd, UserCmd,
    WebhookCmd,
};
use helpdesk_server::settings::CONFIG_FILE_VAR;
use helpdesk_server::startup::open_db;
use helpdesk_server::{Application, Config, Settings, telemetry};

/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small objects across threads, where glibc's arenas spent a fifth of the
/// server's CPU (docs/benchmarks.md, issue 21).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "helpdesk-server", version, about = "The helpdesk REST API server and its admin commands")]
struct Cli {
    /// A TOML file read over the built-in defaults (environment variables
    /// HELPDESK__SECTION__KEY override both).
    #[arg(long, global = true, env = CONFIG_FILE_VAR)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the settings (defaults, the file, the environment)
    /// and say what is wrong, naming the setting, without starting or
    /// connecting to anything: exit status 0 or 1 (for `ExecStartPre`).
    CheckConfig,
    /// A consistent backup while servers keep running: the database (SQLite's
    /// VACUUM INTO, or mariadb-dump --single-transaction), the attachments,
    /// the bitácora spool and a manifest with checksums.
    Backup {
        /// A new (or empty) folder.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restores a backup over the configured database, attachments and
    /// spool (set aside, not deleted), after checking it whole; refuses
    /// while a server uses the database. Migrates it forward if older.
    Restore {
        /// A folder written by `backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// API consumers (X-User-Consumo) and their grants.
    #[command(subcommand)]
    Consumer(ConsumerCmd),
    /// Integrated systems (ADI) and their tokens.
    #[command(subcommand)]
    System(SystemCmd),
    /// Products (alias_producto).
    #[command(subcommand)]
    Product(ProductCmd),
    /// Departments.
    #[command(subcommand)]
    Department(DepartmentCmd),
    /// Internal users.
    #[command(subcommand)]
    User(UserCmd),
    /// Mailboxes of the mail-reading channel.
    #[command(subcommand)]
    MailAccount(MailAccountCmd),
    /// Run the mail-reading channel: read every active mail account's
    /// mailboxes over IMAP every reader.interval_secs, mail becoming tickets.
    ReadMail {
        /// Read every account once and exit (non-zero if an account failed).
        #[arg(long)]
        once: bool,
    },
    /// Mail the reader could not import.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Mail from our own addresses that continued no ticket, held.
    #[command(subcommand)]
    Held(HeldCmd),
    /// Outgoing webhooks: ticket events POSTed, signed, to subscribed URLs.
    #[command(subcommand)]
    Webhook(WebhookCmd),
    /// Service levels: business-hours calendars, holidays, and the targets
    /// per priority.
    #[command(subcommand)]
    Sla(SlaCmd),
}

/// Rust's allocations go to mimalloc; C code (SQLite) still uses glibc's.
///
/// By default mimalloc commits its arenas eagerly on Linux and then keeps
/// every page it touched: with the database's blocking threads each holding
/// a heap, the server's resident memory tripled (31 to 108 MiB under the
/// benchmark's reads on SQLite). Committed on demand, it gives pages back:
/// `.cargo/config.toml` compiles it so (the option is read before `main`).
///
/// glibc raises its mmap threshold after each large free, after which
/// Argon2's blocks (19 MiB each then) came from the per-thread heaps and stayed resident
/// (four 58 MiB heaps were measured). A fixed threshold keeps large blocks
/// mmap'd, so they go back to the system when freed: peak RSS fell from
/// ~320 MiB to ~65 MiB under the benchmark's load, at no measurable cost.
/// One malloc arena per core instead of eight: SQLite's queries run on many
/// blocking-pool threads, each of which otherwise got an arena of its own
/// that kept its freed memory (30 -> 25 MiB after the ticket benchmark, with
/// no loss of throughput measured).
fn bound_allocator_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(cores).unwrap_or(i32::MAX));
    }
}

fn main() -> ExitCode {
    bound_allocator_memory();
    helpdesk_server::allocator::purge_freed_memory_at_once();
    let cli = Cli::parse();
    let loaded = Settings::load(cli.config.as_deref()).and_then(|s| s.validate());
    if let Some(Command::CheckConfig) = cli.command {
        return match loaded {
            Ok(c) => {
                let database = match c.db_url {
                    helpdesk_db::DbUrl::Sqlite(_) => "SQLite",
                    helpdesk_db::DbUrl::Mysql(_) => "MySQL/MariaDB",
                };
                let s = &c.settings.server;
                println!("configuration ok: profile {:?}, {database}, listening on {}:{}", c.profile, s.host, s.port);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", helpdesk_domain::Report(&e));
                ExitCode::FAILURE
            }
        };
    }
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", helpdesk_domain::Report(&e));
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.settings.log.level, config.log_format);
    // SQLite runs its queries on the blocking pool; a bounded pool keeps
    // memory bounded under load (queries queue instead of spawning threads).
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(64).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if let Command::Serve = command {
        let app = Application::start(config).await?;
        app.run_until_stopped().await?;
        tracing::info!("stopped");
        return Ok(());
    }
    match &command {
        Command::Backup { to } => {
            let m = helpdesk_server::backup::backup(&config, to).await?;
            println!(
                "backup written to {}: schema {}, {} files, {}",
                to.display(),
                m.schema_version,
                m.files.len(),
                counts_line(&m.counts)
            );
            return Ok(());
        }
        Command::Restore { from } => {
            let r = helpdesk_server::backup::restore(&config, from).await?;
            for p in &r.set_aside {
                println!("set aside: {}", p.display());
            }
            if !r.migrated.is_empty() {
                println!("migrated forward: {}", r.migrated.join(", "));
            }
            println!(
                "restored {} (taken {}): schema {}, {}",
                from.display(),
                r.manifest.created_at.to_rfc3339(),
                r.facts.schema_version,
                counts_line(&r.facts.counts)
            );
            return Ok(());
        }
        _ => {}
    }
    let db = Arc::new(open_db(&config)?);
    db.migrate().await?;
    let keys = config.keys.clone();
    match command {
        Command::Serve => unreachable!("handled above"),
        Command::Migrate => println!("database is up to date"),
        Command::CheckConfig => unreachable!("answered before the runtime starts"),
        Command::Backup { .. } | Command::Restore { .. } => unreachable!("handled above"),
        Command::Consumer(cmd) => admin::consumer(db, &keys, cmd).await?,
        Command::System(cmd) => admin::system(db, &keys, cmd).await?,
        Command::Product(cmd) => admin::product(db, cmd).await?,
        Command::Department(cmd) => admin::department(db, &keys, cmd).await?,
        Command::User(cmd) => admin::user(db, &config, cmd).await?,
        Command::MailAccount(cmd) => admin::mail_account(db, &keys, cmd).await?,
        Command::Webhook(cmd) => admin::webhook(db, &keys, cmd).await?,
        Command::Sla(cmd) => admin::sla(db, cmd).await?,
        Command::ReadMail { once } => {
            let reader = helpdesk_server::reader::build(&config, db, Arc::new(SystemClock))?;
            let interval = std::time::Duration::from_secs(config.settings.reader.interval_secs);
            let report = helpdesk_server::reader::run(reader, interval, once).await?;
            if once && report.failed_accounts() > 0 {
                anyhow::bail!("{} mail account(s) could not be read (see the log)", report.failed_accounts());
            }
        }
        Command::Quarantine(cmd) => {
            let reader = helpdesk_server::reader::build(&config, db, Arc::new(SystemClock))?;
            admin::quarantine(&reader, cmd).await?
        }
        Command::Held(cmd) => {
            let ingest = helpdesk_server::reader::ingest(&config, db, Arc::new(SystemClock));
            admin::held(&ingest, cmd).await?
        }
    }
    Ok(())
}

fn counts_line(counts: &std::collections::BTreeMap<String, i64>) -> String {
    counts.iter().map(|(t, n)| format!("{t} {n}")).collect::<Vec<_>>().join(", ")
}
