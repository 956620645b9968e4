//! Admin commands: consumers and their grants, products, departments,
//! internal users, mail accounts, outgoing webhooks and service levels. Each
//! prints what it did; secrets are printed once, at creation (or rotation).

use std::collections::BTreeSet;
use std::io::BufRead;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use helpdesk_db::Db;
use helpdesk_domain::model::{
    Endpoint, NewInternalUser, NewSlaPolicy, Priority, ProductAccess, ProductChange, Status, UserStatus,
    WebhookEventKind,
};
use helpdesk_domain::ports::{Clock, SystemClock};
use helpdesk_domain::services::{
    AccessService, AdiService, AdminError, AdminService, IngestService, MailAccountInput, MailAccountService,
    MessageIdSigner, SIGNATURE_HEADER, SlaPart, TIMESTAMP_HEADER, TicketService, UserInput, WebhookService,
};

use crate::settings::{Config, Keys};

#[derive(Debug, Subcommand)]
pub enum ConsumerCmd {
    /// Create a consumer; its secret is printed once.
    Create {
        name: String,
        /// Endpoint it may call, as documented (e.g. correo/save). Repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Grant every endpoint (for tests; real consumers should be single-purpose).
        #[arg(long)]
        all_grants: bool,
    },
    /// List consumers, their status and grants.
    List,
    /// Refuse every request of this consumer from now on.
    Disable { name: String },
    /// Accept this consumer again.
    Enable { name: String },
    /// Replace the consumer's grants.
    Grants {
        name: String,
        #[arg(long = "grant")]
        grants: Vec<String>,
    },
    /// Issue a new secret (printed once); the old one stops working.
    RotateSecret { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Register an integrated system (ADI); its token is printed once.
    Add {
        alias: String,
        #[arg(long)]
        inactive: bool,
    },
    /// List integrated systems and their status.
    List,
    /// Issue a new token (printed once); the old one stops working at once.
    RotateToken { alias: String },
    /// Refuse logins into this system from now on.
    Disable { alias: String },
    /// Accept this system again.
    Enable { alias: String },
}

#[derive(Debug, Subcommand)]
pub enum ProductCmd {
    /// Add a product by its alias (`alias_producto`); every active user may
    /// sign in to it until `set --access asignado`.
    Add { alias: String, name: String },
    /// List products (id, alias, status, access, reset page, name).
    List,
    /// Change a product: who may sign in, its password-reset page, its status.
    Set {
        alias: String,
        /// `todos`: every active user; `asignado`: only users granted it
        /// (`user grant-product`).
        #[arg(long, value_parser = ["todos", "asignado"])]
        access: Option<String>,
        /// The page its reset e-mail links to (`?id=..&token=..` appended).
        #[arg(long, conflicts_with = "default_reset_url")]
        reset_url: Option<String>,
        /// Link to `sso.reset_url` again.
        #[arg(long)]
        default_reset_url: bool,
        /// `activo` or `inactivo` (an inactive product is refused like an unknown one).
        #[arg(long, value_parser = ["activo", "inactivo"])]
        status: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DepartmentCmd {
    /// Add a department.
    Add {
        name: String,
        /// Its Synology Chat channel's name.
        #[arg(long)]
        synology_channel: Option<String>,
    },
    /// List departments.
    List,
    /// Set the department channel's Synology incoming-webhook token (first
    /// line of stdin; stored encrypted). An empty line removes it.
    SetWebhook { id: i64 },
}

#[derive(Debug, Args)]
pub struct UserAdd {
    #[arg(long)]
    pub login: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub email: String,
    /// Department id.
    #[arg(long)]
    pub department: Option<i64>,
    /// Role name (created when missing).
    #[arg(long)]
    pub role: Option<String>,
    /// `tipo_usuario`.
    #[arg(long, default_value = "operador")]
    pub user_type: String,
    /// National id (`cedula`).
    #[arg(long, default_value = "")]
    pub national_id: String,
    #[arg(long, default_value = "")]
    pub mobile: String,
    #[arg(long, default_value = "")]
    pub extension: String,
    /// Tickets may be assigned to this user (`acceso_ticket` S).
    #[arg(long)]
    pub can_take_tickets: bool,
    /// Comma-separated aliases of the ADI systems the user may enter.
    #[arg(long, default_value = "")]
    pub systems: String,
    #[arg(long)]
    pub synology_id: Option<i64>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Register a device PIN (4 to 12 digits) read from HELPDESK_NEW_PIN.
    #[arg(long, requires = "device")]
    pub pin_from_env: bool,
    /// Name of the device the PIN is bound to.
    #[arg(long)]
    pub device: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add an internal user, optionally with a password and a device PIN.
    Add(Box<UserAdd>),
    /// Let the user sign in to a product whose access is `asignado`.
    GrantProduct { login: String, product: String },
    /// Withdraw that.
    RevokeProduct { login: String, product: String },
    /// Activate or deactivate a user, or say whether tickets are assigned to
    /// them. Deactivating an operator moves their open tickets to the
    /// least-loaded other operator of each ticket's department (or to
    /// nobody, until one is available).
    Set(UserSet),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub struct UserSet {
    /// Login (or e-mail) of the user.
    pub login: String,
    /// The user may sign in and work tickets again.
    #[arg(long, group = "change", conflicts_with = "inactivo")]
    pub activo: bool,
    /// The user may no longer sign in; their open tickets move.
    #[arg(long, group = "change")]
    pub inactivo: bool,
    /// `S`: tickets may be assigned to the user (`acceso_ticket`); `N`: no
    /// new ones (those they hold stay).
    #[arg(long, group = "change", value_parser = ["S", "N"], ignore_case = true)]
    pub acceso_ticket: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SlaCmd {
    /// Business-hours calendars, and which one each department keeps.
    #[command(subcommand)]
    Calendar(SlaCalendarCmd),
    /// Holidays of a calendar (no business time is counted on them).
    #[command(subcommand)]
    Holiday(SlaHolidayCmd),
    /// Targets per priority, for one department or every department
    /// without its own.
    #[command(subcommand)]
    Policy(SlaPolicyCmd),
}

#[derive(Debug, Subcommand)]
pub enum SlaCalendarCmd {
    /// Create a calendar, or replace the zone and hours of the one called
    /// NAME (its holidays stay).
    Set {
        name: String,
        /// IANA time zone, e.g. America/Costa_Rica.
        #[arg(long)]
        zona: String,
        /// Opening hours, e.g. "lun-vie 08:00-12:00 13:00-17:00; sab 08:00-12:00"
        /// (days: lun mar mie jue vie sab dom; 24:00 ends a day).
        #[arg(long)]
        horario: String,
    },
    /// List calendars: id, name, zone, hours, holidays, departments that
    /// keep it.
    List,
    /// Give a department a calendar, or (--default) the default one again.
    Assign {
        department_id: i64,
        /// The calendar's name.
        #[arg(required_unless_present = "default", conflicts_with = "default")]
        calendar: Option<String>,
        /// Use the default calendar (`general`).
        #[arg(long)]
        default: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SlaHolidayCmd {
    /// Add a holiday (YYYY-MM-DD) to a calendar.
    Add { calendar: String, date: String },
    /// Remove it.
    Remove { calendar: String, date: String },
}

#[derive(Debug, Subcommand)]
pub enum SlaPolicyCmd {
    /// Create or replace the policy of a priority (in a department, or in
    /// every department without its own); times in business minutes.
    Set {
        /// baja, normal, alta or urgente.
        #[arg(long)]
        prioridad: String,
        /// Department id; none: every department without its own policy.
        #[arg(long)]
        departamento: Option<i64>,
        /// Business minutes to the first public reply.
        #[arg(long)]
        primera_respuesta: i64,
        /// Business minutes to closing.
        #[arg(long)]
        resolucion: i64,
        /// Percentage of a target at which the assignee is warned (1-99).
        #[arg(long)]
        aviso: Option<i64>,
    },
    /// List policies: id, department (- for every department without its
    /// own), priority, first response and resolution (minutes), warning.
    List,
    /// Remove a policy; tickets it covers keep the due times they have.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum MailAccountCmd {
    /// Add a mailbox; its password (first line of stdin) is stored encrypted.
    Add {
        #[arg(long)]
        host: String,
        /// The account's user, which is the address tickets arrive at.
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "993")]
        port: String,
        /// Mailbox to read. Repeatable; INBOX when none.
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
        /// Department id the mailbox routes to.
        #[arg(long)]
        department: i64,
        #[arg(long)]
        inactive: bool,
        /// Do not acknowledge new tickets by e-mail.
        #[arg(long)]
        no_acknowledgement: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Subscribe an http(s) URL to ticket events; prints its id and its
    /// signing secret (shown only now).
    Add {
        url: String,
        /// An event to POST: ticket.creado, ticket.respuesta_cliente,
        /// ticket.respuesta_operador, ticket.asignado, ticket.estado,
        /// ticket.entrega_fallida.
        /// Repeatable.
        #[arg(long = "event")]
        events: Vec<String>,
        /// Every event.
        #[arg(long, conflicts_with = "events")]
        all_events: bool,
    },
    /// List subscriptions: id, status, events, URL.
    List,
    /// End a subscription; its deliveries not yet made are dropped.
    Remove { id: i64 },
    /// Issue a new signing secret (printed once); the old one signs nothing
    /// from now on.
    RotateSecret { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// List the mail waiting in quarantine (with --all, the retried ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Try a quarantined mail again, without the size limit; prints its ticket.
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum HeldCmd {
    /// List the mail held (from one of our own addresses and continuing no
    /// ticket); with --all, the released ones too.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Release a held mail: it becomes a ticket (or joins the one it
    /// continues) as any mail would; prints the ticket.
    Release { id: i64 },
}

fn parse_grants(list: &[String], all: bool) -> anyhow::Result<BTreeSet<Endpoint>> {
    if all {
        return Ok(Endpoint::every().collect());
    }
    list.iter()
        .map(|g| {
            Endpoint::from_path(g).ok_or_else(|| {
                let known: Vec<_> = Endpoint::every().map(|e| e.path()).collect();
                anyhow!("unknown endpoint {g:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).with_context(|| format!("reading the {what} from stdin"))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        bail!("the {what} read from stdin is empty");
    }
    Ok(line)
}

pub async fn consumer(db: Arc<Db>, keys: &Keys, cmd: ConsumerCmd) -> anyhow::Result<()> {
    let access = AccessService::new(db, keys.consumer_hmac.clone(), Arc::new(SystemClock));
    match cmd {
        ConsumerCmd::Create { name, grants, all_grants } => {
            let grants = parse_grants(&grants, all_grants)?;
            let (c, secret) = access.create(&name, grants).await?;
            println!("consumer {} created (id {})", c.name, c.id);
            println!("X-User-Consumo: {}", c.name);
            println!("X-User-Secret: {secret}");
            println!("The secret is shown only now; store it safely.");
        }
        ConsumerCmd::List => {
            for c in access.list().await? {
                let grants: Vec<_> = c.grants.iter().map(|g| g.path()).collect();
                println!("{}\t{}\t{}\t{}", c.id, c.name, c.status.as_str(), grants.join(","));
            }
        }
        ConsumerCmd::Disable { name } => {
            access.set_status(&name, Status::Inactive).await?;
            println!("consumer {name} disabled");
        }
        ConsumerCmd::Enable { name } => {
            access.set_status(&name, Status::Active).await?;
            println!("consumer {name} enabled");
        }
        ConsumerCmd::Grants { name, grants } => {
            let grants = parse_grants(&grants, false)?;
            access.set_grants(&name, grants).await?;
            println!("grants of {name} replaced");
        }
        ConsumerCmd::RotateSecret { name } => {
            let secret = access.rotate_secret(&name).await?;
            println!("X-User-Secret: {secret}");
            println!("The old secret no longer works; this one is shown only now.");
        }
    }
    Ok(())
}

pub async fn system(db: Arc<Db>, keys: &Keys, cmd: SystemCmd) -> anyhow::Result<()> {
    let adi = AdiService::new(db.clone(), keys.tokens.clone(), Arc::new(SystemClock));
    match cmd {
        SystemCmd::Add { alias, inactive } => {
            if adi.list_systems().await?.iter().any(|s| s.alias.eq_ignore_ascii_case(&alias)) {
                bail!("system {alias} already exists (use rotate-token for a new token)");
            }
            let status = if inactive { Status::Inactive } else { Status::Active };
            let reg = adi.set_system(&alias, Some(status), false).await?;
            println!("system {} registered (id {})", reg.system.alias, reg.system.id);
            println!("token: {}", reg.token.unwrap_or_default());
            println!("The token is shown only now; store it safely.");
        }
        SystemCmd::List => {
            for s in adi.list_systems().await? {
                println!("{}\t{}\t{}\t{}", s.id, s.alias, s.status.as_str(), s.updated_at.format("%Y-%m-%d %H:%M:%S"));
            }
        }
        SystemCmd::RotateToken { alias } => {
            ensure_system(&adi, &alias).await?;
            let reg = adi.set_system(&alias, None, true).await?;
            println!("token: {}", reg.token.unwrap_or_default());
            println!("The old token no longer works; this one is shown only now.");
        }
        SystemCmd::Disable { alias } => {
            ensure_system(&adi, &alias).await?;
            adi.set_system(&alias, Some(Status::Inactive), false).await?;
            println!("system {alias} disabled");
        }
        SystemCmd::Enable { alias } => {
            ensure_system(&adi, &alias).await?;
            adi.set_system(&alias, Some(Status::Active), false).await?;
            println!("system {alias} enabled");
        }
    }
    Ok(())
}

async fn ensure_system(adi: &AdiService<Db>, alias: &str) -> anyhow::Result<()> {
    if !adi.list_systems().await?.iter().any(|s| s.alias.eq_ignore_ascii_case(alias)) {
        bail!("system {alias} not found");
    }
    Ok(())
}

pub async fn product(db: Arc<Db>, cmd: ProductCmd) -> anyhow::Result<()> {
    let admin = AdminService::new(db);
    match cmd {
        ProductCmd::Add { alias, name } => {
            let p = admin.add_product(&alias, &name).await?;
            println!("product {} added (id {})", p.alias, p.id);
        }
        ProductCmd::List => {
            for p in admin.products().await? {
                let page = p.reset_url.as_deref().unwrap_or("-");
                println!("{}\t{}\t{}\t{}\t{}\t{}", p.id, p.alias, p.status.as_str(), p.access.as_str(), page, p.name);
            }
        }
        ProductCmd::Set { alias, access, reset_url, default_reset_url, status } => {
            let change = ProductChange {
                status: status.as_deref().and_then(Status::parse),
                access: access.as_deref().and_then(ProductAccess::parse),
                reset_url: if default_reset_url { Some(None) } else { reset_url.map(Some) },
            };
            let p = admin.update_product(&alias, change).await?;
            let page = p.reset_url.as_deref().unwrap_or("(sso.reset_url)");
            println!("product {}: {}, access {}, reset page {page}", p.alias, p.status.as_str(), p.access.as_str());
        }
    }
    Ok(())
}

pub async fn department(db: Arc<Db>, keys: &Keys, cmd: DepartmentCmd) -> anyhow::Result<()> {
    let admin = AdminService::new(db);
    match cmd {
        DepartmentCmd::Add { name, synology_channel } => {
            let d = admin.add_department(&name, synology_channel).await?;
            println!("department {} added (id {})", d.name, d.id);
        }
        DepartmentCmd::SetWebhook { id } => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the webhook token from stdin")?;
            let set = admin.set_department_webhook(&keys.secret_box, id, Some(&line)).await?;
            println!("webhook of department {id} {}", if set { "set" } else { "removed" });
        }
        DepartmentCmd::List => {
            for d in admin.departments().await? {
                println!("{}\t{}\t{}\t{}", d.id, d.name, d.status.as_str(), d.synology_channel.unwrap_or_default());
            }
        }
    }
    Ok(())
}

pub async fn user(db: Arc<Db>, config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    let a = match cmd {
        UserCmd::Add(a) => a,
        UserCmd::GrantProduct { login, product } => return product_grant(db, &login, &product, true).await,
        UserCmd::RevokeProduct { login, product } => return product_grant(db, &login, &product, false).await,
        UserCmd::Set(set) => return user_set(db, config, set).await,
    };
    let admin = AdminService::new(db);
    let role_id = match &a.role {
        Some(r) => Some(admin.ensure_role(r).await?.id),
        None => None,
    };
    let password = if a.password_stdin { Some(read_stdin_line("password")?) } else { None };
    let device_pin = if a.pin_from_env {
        let pin = std::env::var("HELPDESK_NEW_PIN").context("--pin-from-env needs HELPDESK_NEW_PIN")?;
        Some((a.device.clone().unwrap_or_default(), pin))
    } else {
        None
    };
    let a = *a;
    let (u, device) = admin
        .add_user(UserInput {
            user: NewInternalUser {
                login: a.login,
                name: a.name,
                email: a.email,
                national_id: a.national_id,
                user_type: a.user_type,
                department_id: a.department,
                role_id,
                extension: a.extension,
                mobile: a.mobile,
                can_take_tickets: a.can_take_tickets,
                manager: 0,
                system_access: a.systems,
                synology_id: a.synology_id,
                code: String::new(),
                password_hash: None,
            },
            password,
            device_pin,
        })
        .await?;
    println!("user {} added (id {})", u.login, u.id);
    if let Some(d) = device {
        println!("device {} registered (id_device {})", d.name, d.id);
    }
    Ok(())
}

pub async fn mail_account(db: Arc<Db>, keys: &Keys, cmd: MailAccountCmd) -> anyhow::Result<()> {
    let MailAccountCmd::Add { host, user, port, mailboxes, department, inactive, no_acknowledgement } = cmd;
    let password = read_stdin_line("mailbox password")?;
    let account = MailAccountService::new(db, keys.secret_box.clone())
        .add(MailAccountInput {
            host,
            user,
            password,
            port,
            mailboxes,
            department_id: department,
            status: if inactive { Status::Inactive } else { Status::Active },
            send_acknowledgement: !no_acknowledgement,
        })
        .await?;
    println!("mail account {} added (id {})", account.user, account.id);
    Ok(())
}

fn parse_events(list: &[String], all: bool) -> anyhow::Result<BTreeSet<WebhookEventKind>> {
    if all {
        return Ok(WebhookEventKind::ALL.into_iter().collect());
    }
    if list.is_empty() {
        bail!("name the events with --event (repeatable), or --all-events");
    }
    list.iter()
        .flat_map(|e| e.split(','))
        .map(|e| {
            WebhookEventKind::parse(e).ok_or_else(|| {
                let known: Vec<_> = WebhookEventKind::ALL.iter().map(|k| k.as_str()).collect();
                anyhow!("unknown event {e:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

pub async fn webhook(db: Arc<Db>, keys: &Keys, cmd: WebhookCmd) -> anyhow::Result<()> {
    let hooks = WebhookService::new(db, keys.secret_box.clone(), Arc::new(SystemClock));
    match cmd {
        WebhookCmd::Add { url, events, all_events } => {
            let events = parse_events(&events, all_events)?;
            let parsed = url::Url::parse(url.trim()).with_context(|| format!("invalid URL {url:?}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                bail!("invalid URL {url:?}: only http:// and https:// URLs are allowed");
            }
            let (hook, secret) = hooks.add(&url, events).await?;
            println!("webhook {} added: {}", hook.id, hook.url);
            println!("events: {}", WebhookEventKind::join(&hook.events));
            println!("secret: {secret}");
            println!(
                "The secret is shown only now; store it safely. Each POST carries {SIGNATURE_HEADER}: \
                 sha256=<hex HMAC-SHA256(secret, \"<{TIMESTAMP_HEADER}>.<body>\")>."
            );
        }
        WebhookCmd::List => {
            for h in hooks.list().await? {
                println!("{}\t{}\t{}\t{}", h.id, h.status.as_str(), WebhookEventKind::join(&h.events), h.url);
            }
        }
        WebhookCmd::Remove { id } => {
            hooks.remove(id).await?;
            println!("webhook {id} removed");
        }
        WebhookCmd::RotateSecret { id } => {
            let secret = hooks.rotate_secret(id).await?;
            println!("secret: {secret}");
            println!("The old secret signs nothing from now on; this one is shown only now.");
        }
    }
    Ok(())
}

pub async fn quarantine(reader: &crate::reader::Reader, cmd: QuarantineCmd) -> anyhow::Result<()> {
    match cmd {
        QuarantineCmd::List { all } => {
            let entries = reader.quarantined(all).await?;
            println!("id\taccount\tmailbox\tuid\tsize\treason\tattempts\tticket\tsince\tdetail");
            for q in &entries {
                let l = &q.location;
                let ticket = q.ticket_id.map_or("-".to_string(), |t| t.to_string());
                println!(
                    "{}\t{}\t{}\t{}/{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    q.id,
                    l.account_id,
                    l.mailbox,
                    l.uid_validity,
                    l.uid,
                    q.size,
                    q.reason.as_str(),
                    q.attempts,
                    ticket,
                    q.created_at.format("%Y-%m-%d %H:%M:%S"),
                    q.detail.replace(['\n', '\t'], " ")
                );
            }
            eprintln!("{} mail in quarantine", entries.iter().filter(|q| !q.is_resolved()).count());
        }
        QuarantineCmd::Retry { id } => {
            let q = reader.retry(id).await?;
            match q.ticket_id {
                Some(ticket) => println!("quarantined mail {id} is now ticket {ticket}"),
                None => bail!("quarantined mail {id} was refused again ({}): {}", q.reason.as_str(), q.detail),
            }
        }
    }
    Ok(())
}

pub async fn held(ingest: &IngestService<Db>, cmd: HeldCmd) -> anyhow::Result<()> {
    match cmd {
        HeldCmd::List { all } => {
            let entries = ingest.held(all).await?;
            println!("id\treason\tfrom\tsubject\tticket\tsince");
            for h in &entries {
                let ticket = h.ticket_id.map_or("-".to_string(), |t| t.to_string());
                let one_line = |s: &str| s.replace(['\n', '\t', '\r'], " ");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    h.id,
                    h.reason.as_str(),
                    one_line(&h.mail.from),
                    one_line(&h.mail.subject),
                    ticket,
                    h.created_at.format("%Y-%m-%d %H:%M:%S"),
                );
            }
            eprintln!("{} mail held", entries.iter().filter(|h| !h.is_released()).count());
        }
        HeldCmd::Release { id } => match ingest.release(id).await? {
            Some((held, outcome)) => {
                let ticket = held.ticket_id.unwrap_or(outcome.ticket_id);
                println!("held mail {id} is now in ticket {ticket}");
            }
            None => bail!("no held mail with id {id}"),
        },
    }
    Ok(())
}

async fn product_grant(db: Arc<Db>, login: &str, alias: &str, granted: bool) -> anyhow::Result<()> {
    let admin = AdminService::new(db);
    let user = admin.user(login).await?;
    let product = admin.product(alias).await?;
    let revoked = admin.set_product_grant(user.id, product.id, granted, SystemClock.now()).await?;
    let what = if granted { "may now sign in to" } else { "may no longer sign in to" };
    println!("user {} {what} {}", user.login, product.alias);
    if revoked > 0 {
        println!("{revoked} live token(s) of {} for {} revoked", user.login, product.alias);
    }
    if product.access == ProductAccess::All {
        println!(
            "(product {} is open to every active user: `product set {} --access asignado` to restrict it)",
            product.alias, product.alias
        );
    }
    Ok(())
}

async fn user_set(db: Arc<Db>, config: &Config, set: UserSet) -> anyhow::Result<()> {
    let admin = AdminService::new(db.clone());
    let user = admin.user(&set.login).await?;
    if let Some(on) = set.acceso_ticket.as_deref() {
        let on = on.eq_ignore_ascii_case("S");
        admin.set_takes_tickets(user.id, on).await.with_context(|| format!("user {}", user.login))?;
        println!("user {} (id {}): acceso_ticket {}", user.login, user.id, if on { "S" } else { "N" });
    }
    let status = if set.inactivo { Some(UserStatus::Inactive) } else { set.activo.then_some(UserStatus::Active) };
    if let Some(status) = status {
        let revoked = admin
            .set_user_status(user.id, status, SystemClock.now())
            .await
            .with_context(|| format!("user {}", user.login))?;
        println!("user {} (id {}): {}", user.login, user.id, status.as_str().to_lowercase());
        if revoked > 0 {
            println!("{revoked} live token(s) of {} revoked", user.login);
        }
    }
    if status == Some(UserStatus::Inactive) {
        // Inactive first, so nothing assigns them a ticket meanwhile.
        let ingest = &config.ingest;
        let ids = MessageIdSigner::new(config.keys.consumer_hmac.clone(), &config.settings.ingest.message_id_domain);
        let tickets = TicketService::new(db, ids, Arc::new(SystemClock), ingest.chat_to_users, ingest.setup_cache);
        let moved = tickets.release(user.id).await.with_context(|| format!("moving the tickets of {}", user.login))?;
        println!("open tickets moved off {}: {moved}", user.login);
    }
    Ok(())
}

/// The service levels' errors, with the flag that gave the refused value.
fn sla_error(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::Sla { what: SlaPart::Zone, cause } => anyhow!("--zona: {cause}"),
        AdminError::Sla { what: SlaPart::Hours, cause } => anyhow!("--horario: {cause}"),
        AdminError::Sla { what: SlaPart::Policy, cause } => anyhow!("{cause}"),
        other => other.into(),
    }
}

pub async fn sla(db: Arc<Db>, cmd: SlaCmd) -> anyhow::Result<()> {
    let admin = AdminService::new(db);
    match cmd {
        SlaCmd::Calendar(SlaCalendarCmd::Set { name, zona, horario }) => {
            let c = admin.save_calendar(&name, &zona, &horario).await.map_err(sla_error)?;
            println!("calendar {} saved (id {}): {}, {}", c.name, c.id, c.zone.name(), c.hours);
        }
        SlaCmd::Calendar(SlaCalendarCmd::List) => {
            let setup = admin.sla_setup().await?;
            for c in &setup.calendars {
                let holidays: Vec<String> = c.holidays.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
                let departments: Vec<String> = setup
                    .department_calendars
                    .iter()
                    .filter(|(_, cal)| *cal == c.id)
                    .map(|(d, _)| d.to_string())
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.id,
                    c.name,
                    c.zone.name(),
                    c.hours,
                    if holidays.is_empty() { "-".to_string() } else { holidays.join(",") },
                    if departments.is_empty() { "-".to_string() } else { departments.join(",") }
                );
            }
        }
        SlaCmd::Calendar(SlaCalendarCmd::Assign { department_id, calendar, default: _ }) => {
            admin.assign_calendar(department_id, calendar.as_deref()).await?;
            match calendar {
                Some(name) => println!("department {department_id} keeps calendar {name}"),
                None => println!("department {department_id} keeps the default calendar"),
            }
        }
        SlaCmd::Holiday(cmd) => {
            let (name, date, on) = match cmd {
                SlaHolidayCmd::Add { calendar, date } => (calendar, date, true),
                SlaHolidayCmd::Remove { calendar, date } => (calendar, date, false),
            };
            let day = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .with_context(|| format!("invalid date {date:?}: a date is written YYYY-MM-DD"))?;
            admin.set_holiday(&name, day, on).await?;
            let what = if on { "is a holiday" } else { "is no longer a holiday" };
            println!("{} {what} in calendar {name}", day.format("%Y-%m-%d"));
        }
        SlaCmd::Policy(SlaPolicyCmd::Set { prioridad, departamento, primera_respuesta, resolucion, aviso }) => {
            let priority = Priority::parse(prioridad.trim()).with_context(|| {
                let known: Vec<_> = Priority::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown priority {prioridad:?}; known: {}", known.join(", "))
            })?;
            let policy = NewSlaPolicy {
                department_id: departamento,
                priority,
                first_response_mins: primera_respuesta,
                resolution_mins: resolucion,
                warning_pct: aviso,
            };
            let p = admin.save_policy(policy).await.map_err(sla_error)?;
            let scope =
                p.department_id.map_or("every department without its own".to_string(), |d| format!("department {d}"));
            let warning = p.warning_pct.map_or("no warning".to_string(), |w| format!("warning at {w}%"));
            println!(
                "policy {} saved: {} tickets in {scope}: first response {} min, resolution {} min, {warning} \
                 (business time)",
                p.id,
                p.priority.as_str(),
                p.first_response_mins,
                p.resolution_mins
            );
        }
        SlaCmd::Policy(SlaPolicyCmd::List) => {
            for p in admin.sla_setup().await?.policies {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    p.id,
                    p.department_id.map_or("-".to_string(), |d| d.to_string()),
                    p.priority.as_str(),
                    p.first_response_mins,
                    p.resolution_mins,
                    p.warning_pct.map_or("-".to_string(), |w| format!("{w}%"))
                );
            }
        }
        SlaCmd::Policy(SlaPolicyCmd::Remove { id }) => {
            admin.remove_policy(id).await?;
            println!("policy {id} removed");
        }
    }
    Ok(())
}
