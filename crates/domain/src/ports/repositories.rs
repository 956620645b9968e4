//! The repository ports: one trait per table group, each method with what
//! an adapter MUST do (checked by the contract suite).

use super::*;

/// Products (`producto`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ProductRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the alias is taken (case-insensitively).
    fn create_product(&self, new: NewProduct) -> impl Future<Output = RepoResult<Product>> + Send;
    /// Case-insensitive lookup by `alias_producto`.
    fn find_product_by_alias(&self, alias: &str) -> impl Future<Output = RepoResult<Option<Product>>> + Send;
    fn find_product(&self, id: i64) -> impl Future<Output = RepoResult<Option<Product>>> + Send;
    fn list_products(&self) -> impl Future<Output = RepoResult<Vec<Product>>> + Send;
    /// Sets who may sign in, the reset page and the status of the product
    /// with this alias. MUST return `NotFound` for an unknown alias.
    fn update_product(&self, alias: &str, change: ProductChange) -> impl Future<Output = RepoResult<Product>> + Send;
    /// Grants (`true`) or withdraws the user's access to the product;
    /// idempotent. MUST return `MissingReference` for an unknown user or product.
    fn set_product_grant(
        &self,
        user_id: i64,
        product_id: i64,
        granted: bool,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    fn has_product_grant(&self, user_id: i64, product_id: i64) -> impl Future<Output = RepoResult<bool>> + Send;
}

/// Departments (`departamento`) and roles (`rol`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait DepartmentRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the name is taken.
    fn create_department(&self, new: NewDepartment) -> impl Future<Output = RepoResult<Department>> + Send;
    fn find_department(&self, id: i64) -> impl Future<Output = RepoResult<Option<Department>>> + Send;
    fn list_departments(&self) -> impl Future<Output = RepoResult<Vec<Department>>> + Send;
    /// Stores the department channel's incoming-webhook token, sealed.
    /// MUST return `NotFound` for an unknown department.
    fn set_department_webhook(
        &self,
        department_id: i64,
        sealed_token: Option<Vec<u8>>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    fn department_webhook(&self, department_id: i64) -> impl Future<Output = RepoResult<Option<Vec<u8>>>> + Send;
    /// Returns the role with this name, creating it when missing.
    fn ensure_role(&self, name: &str) -> impl Future<Output = RepoResult<Role>> + Send;
}

/// Internal users (`usuario`) and their PIN devices.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait UserRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the login or the e-mail is taken
    /// (case-insensitively), and `MissingReference` for an unknown
    /// department or role.
    fn create_user(&self, new: NewInternalUser) -> impl Future<Output = RepoResult<InternalUser>> + Send;
    fn find_user(&self, id: i64) -> impl Future<Output = RepoResult<Option<InternalUser>>> + Send;
    /// Users matching every given field of the filter, ordered by id.
    /// `login` matches `login` or `usuario`; text matches ignore case.
    /// An empty filter MUST return nothing rather than everyone.
    fn find_users(&self, filter: UserFilter) -> impl Future<Output = RepoResult<Vec<InternalUser>>> + Send;
    /// The user whose login or e-mail equals `login_or_email`, with the
    /// stored password hash (`None` when the user has none).
    fn find_user_credentials(
        &self,
        login_or_email: &str,
    ) -> impl Future<Output = RepoResult<Option<(InternalUser, Option<String>)>>> + Send;
    /// MUST return `NotFound` for an unknown user.
    fn set_password_hash(&self, user_id: i64, hash: &str) -> impl Future<Output = RepoResult<()>> + Send;
    /// MUST return `NotFound` for an unknown user.
    fn set_user_status(&self, user_id: i64, status: UserStatus) -> impl Future<Output = RepoResult<()>> + Send;
    /// Whether the user takes tickets (`acceso_ticket` S/N). MUST return
    /// `NotFound` for an unknown user.
    fn set_takes_tickets(&self, user_id: i64, on: bool) -> impl Future<Output = RepoResult<()>> + Send;
    /// Records a successful login (`ultimo_acceso`, `ip_address`). MUST
    /// return `NotFound` for an unknown user.
    fn record_login(&self, user_id: i64, at: Timestamp, ip: &str) -> impl Future<Output = RepoResult<()>> + Send;
    /// MUST return `NotFound` for an unknown user.
    fn set_synology_id(&self, user_id: i64, synology_id: i64) -> impl Future<Output = RepoResult<()>> + Send;
    /// MUST return `MissingReference` for an unknown user.
    fn add_device(&self, new: NewDevice) -> impl Future<Output = RepoResult<Device>> + Send;
    fn find_device(&self, id: i64) -> impl Future<Output = RepoResult<Option<Device>>> + Send;
}

/// API consumers (`consumidor_api`) and their grants (`consumidor_permiso`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ConsumerRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the name is taken (case-insensitively).
    fn create_consumer(&self, new: NewConsumer) -> impl Future<Output = RepoResult<Consumer>> + Send;
    /// Exact (case-sensitive) lookup, grants included.
    fn find_consumer(&self, name: &str) -> impl Future<Output = RepoResult<Option<Consumer>>> + Send;
    fn list_consumers(&self) -> impl Future<Output = RepoResult<Vec<Consumer>>> + Send;
    /// MUST return `NotFound` for an unknown consumer.
    fn set_consumer_status(&self, name: &str, status: Status) -> impl Future<Output = RepoResult<()>> + Send;
    /// Replaces the grants. MUST return `NotFound` for an unknown consumer.
    fn set_consumer_grants(
        &self,
        name: &str,
        grants: BTreeSet<Endpoint>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Replaces the secret hash. MUST return `NotFound` for an unknown consumer.
    fn set_consumer_secret(&self, name: &str, secret_hash: &str) -> impl Future<Output = RepoResult<()>> + Send;
}

/// The bitácora (`bitacora_log`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait AuditRepository: Send + Sync + 'static {
    /// Reserves `count` consecutive ids for records this process will
    /// write, and returns the first. MUST never hand out an id twice, even to
    /// concurrent callers in other processes; reserved ids are above every
    /// id already stored (ids increase from block to block).
    fn reserve_audit_ids(&self, count: i64) -> impl Future<Output = RepoResult<i64>> + Send;
    /// Stores finished records in one transaction, durably before it
    /// returns. A `parent_id` that names no record (stored, or earlier in the
    /// batch) is stored as `None`, never refused: clients send whatever id
    /// they have. MUST return `Duplicate`, writing nothing, when an id is
    /// already stored.
    fn write_audit(&self, records: &[AuditRecord]) -> impl Future<Output = RepoResult<()>> + Send;
    fn find_audit(&self, id: i64) -> impl Future<Output = RepoResult<Option<AuditEntry>>> + Send;
    /// The newest records first, at most `limit`.
    fn recent_audit(&self, limit: i64) -> impl Future<Output = RepoResult<Vec<AuditEntry>>> + Send;
    /// Deletes up to `limit` records dated before `before`, oldest first;
    /// returns how many went. Records linking to them keep their
    /// `parent_id` (the id of a record no longer kept).
    fn purge_audit(&self, before: Timestamp, limit: i64) -> impl Future<Output = RepoResult<u64>> + Send;
}

/// Mailbox accounts (`cuenta_correo`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait MailAccountRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the account user is taken, and
    /// `MissingReference` for an unknown department.
    fn create_mail_account(&self, new: NewMailAccount) -> impl Future<Output = RepoResult<MailAccount>> + Send;
    /// Accounts matching every given field, ordered by id.
    fn find_mail_accounts(
        &self,
        filter: MailAccountFilter,
    ) -> impl Future<Output = RepoResult<Vec<MailAccount>>> + Send;
}

/// Whether the store answers, and takes writes (for `/ready`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait StoreHealth: Send + Sync + 'static {
    fn ping(&self) -> impl Future<Output = RepoResult<()>> + Send;
    /// Whether a write would be taken now, leaving nothing behind: a write
    /// rolled back (a read-only server, a cluster node without quorum, a
    /// locked file refuse it), and where the adapter can tell, at least
    /// `room` bytes left for the data (a disk or a size cap nearly full).
    /// `Unavailable` saying why when not.
    fn probe_write(&self, room: u64) -> impl Future<Output = RepoResult<()>> + Send;
    /// Connections in use and the pool's maximum, for metrics (`None`: no pool).
    fn pool_usage(&self) -> Option<(usize, usize)>;
}

/// Issued user tokens (`sesion_usuario`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait SessionRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` for a token id already used and
    /// `MissingReference` for an unknown user or product.
    fn create_session(&self, session: UserSession) -> impl Future<Output = RepoResult<()>> + Send;
    fn find_session(&self, token_id: &str) -> impl Future<Output = RepoResult<Option<UserSession>>> + Send;
    /// Atomically revokes `old_id` (at `now`) and stores `new`. MUST return
    /// `NotFound`, storing nothing, when `old_id` is unknown or already
    /// revoked: of two concurrent rotations of one token, exactly one wins.
    fn rotate_session(
        &self,
        old_id: &str,
        new: UserSession,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Revokes every live token of the family; returns how many.
    fn revoke_session_family(&self, family_id: &str, now: Timestamp) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Revokes every live token of the user; returns how many.
    fn revoke_user_sessions(&self, user_id: i64, now: Timestamp) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Revokes every live token of the user for this product; returns how
    /// many.
    fn revoke_product_sessions(
        &self,
        user_id: i64,
        product_id: i64,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
}

/// The console's sessions (`sesion_consola`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ConsoleSessionRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` for an id already stored and
    /// `MissingReference` for an unknown user.
    fn create_console_session(&self, session: ConsoleSession) -> impl Future<Output = RepoResult<()>> + Send;
    fn find_console_session(&self, id_hash: &str) -> impl Future<Output = RepoResult<Option<ConsoleSession>>> + Send;
    /// Records a request of the session at `at` (later than the last one
    /// recorded; an earlier `at` changes nothing).
    fn touch_console_session(&self, id_hash: &str, at: Timestamp) -> impl Future<Output = RepoResult<()>> + Send;
    /// Ends the session at `at`; `false` when it was unknown or had ended.
    fn end_console_session(&self, id_hash: &str, at: Timestamp) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Records that the user has the ticket open at `at` (answering or
    /// not): one row per ticket and user, replaced by each call.
    fn mark_presence(
        &self,
        ticket_id: i64,
        user_id: i64,
        answering: bool,
        at: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Who had any of `ticket_ids` open at `since` or later, with their
    /// names, by ticket and then name.
    fn presence_on(
        &self,
        ticket_ids: &[i64],
        since: Timestamp,
    ) -> impl Future<Output = RepoResult<Vec<Presence>>> + Send;
    /// Every (ticket, user) answering since `since`, by ticket and user.
    fn answering_since(&self, since: Timestamp) -> impl Future<Output = RepoResult<Vec<(i64, i64)>>> + Send;
    /// Deletes the presence rows last seen before `before`; how many.
    fn forget_presence(&self, before: Timestamp) -> impl Future<Output = RepoResult<u64>> + Send;
}

/// Password reset requests (`password_reset`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait PasswordResetRepository: Send + Sync + 'static {
    /// Stores a new request and returns it. MUST return `MissingReference`
    /// for an unknown user.
    fn create_reset(
        &self,
        user_id: i64,
        token_hash: &str,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<PasswordReset>> + Send;
    fn find_reset(&self, id: i64) -> impl Future<Output = RepoResult<Option<PasswordReset>>> + Send;
    /// The user's most recent request.
    fn latest_reset(&self, user_id: i64) -> impl Future<Output = RepoResult<Option<PasswordReset>>> + Send;
    /// In one transaction: marks the request used, sets the user's password
    /// hash and revokes every token of the user. MUST return `NotFound`,
    /// changing nothing, when the request is unknown or already used (of two
    /// concurrent uses, exactly one wins).
    fn complete_reset(
        &self,
        reset_id: i64,
        new_password_hash: &str,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
}

/// Failed-login counters (`intento_login`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ThrottleRepository: Send + Sync + 'static {
    fn throttle_state(&self, key: &str) -> impl Future<Output = RepoResult<Option<ThrottleState>>> + Send;
    /// Reserves one attempt on every key at once, or on none, before the
    /// attempt is checked (so that attempts running in parallel are counted
    /// before any of them is verified). MUST be atomic against concurrent
    /// reservations of the same keys, from other processes too: checking a
    /// key against its `max` and counting the attempt are one step. A key
    /// that is not locked and whose window started before `window_start`, or
    /// whose lock has been served, starts over. A key that is locked (until
    /// after `now`), or whose count
    /// has reached its `max`, refuses, and then nothing is counted on any
    /// key. The attempt that brings a key's count to its `max` is granted and
    /// locks the key until its `lock_until`. Every key's row is kept (a
    /// failed attempt stays counted).
    fn reserve_attempt(
        &self,
        limits: &[ThrottleLimit],
        now: Timestamp,
        window_start: Timestamp,
    ) -> impl Future<Output = RepoResult<Reservation>> + Send;
    /// After a successful attempt: removes the keys in `clear`, and gives
    /// back one attempt on each key of `refund` (never below zero), unlocking
    /// it when its count falls below its `max`.
    fn attempt_succeeded(
        &self,
        clear: &[String],
        refund: &[ThrottleLimit],
    ) -> impl Future<Output = RepoResult<()>> + Send;
    fn clear_throttle(&self, key: &str) -> impl Future<Output = RepoResult<()>> + Send;
    /// A login that succeeded, in one step: `attempt_succeeded(clear,
    /// refund)`, the user's last access recorded (as
    /// `UserRepository::record_login`) and the session stored (as
    /// `SessionRepository::create_session`). MUST be atomic: an unknown
    /// user is `NotFound` and a session id already stored `Duplicate`, and
    /// then nothing is written (a store does it in one transaction: one
    /// commit where the three calls took three).
    fn login_succeeded(&self, done: LoginDone) -> impl Future<Output = RepoResult<()>> + Send;
    /// Deletes up to `limit` keys that count for nothing any more, so that
    /// a reservation would start them over as if they were absent: a lock
    /// served by `now`, or no lock and a window started before
    /// `window_start`. Returns how many went. A key started over meanwhile
    /// (by a concurrent reservation) MUST be kept: the condition is checked
    /// again as each row is deleted.
    fn purge_stale_throttles(
        &self,
        window_start: Timestamp,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
}

/// Integrated systems (`sistema_integrado`) and their login tickets
/// (`ticket_acceso_adi`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait IntegratedSystemRepository: Send + Sync + 'static {
    /// MUST return `Duplicate` when the alias is taken (case-insensitively).
    fn create_system(
        &self,
        alias: &str,
        status: Status,
        token_hash: &str,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<IntegratedSystem>> + Send;
    /// Case-insensitive lookup by alias.
    fn find_system(&self, alias: &str) -> impl Future<Output = RepoResult<Option<IntegratedSystem>>> + Send;
    fn find_system_by_id(&self, id: i64) -> impl Future<Output = RepoResult<Option<IntegratedSystem>>> + Send;
    fn list_systems(&self) -> impl Future<Output = RepoResult<Vec<IntegratedSystem>>> + Send;
    /// Changes the status and/or the token hash (the old token stops working
    /// at once). MUST return `NotFound` for an unknown alias.
    fn update_system(
        &self,
        alias: &str,
        status: Option<Status>,
        token_hash: Option<String>,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<IntegratedSystem>> + Send;
    /// MUST return `Duplicate` for a ticket id already used and
    /// `MissingReference` for an unknown user or system.
    fn create_login_ticket(&self, ticket: LoginTicket) -> impl Future<Output = RepoResult<()>> + Send;
    /// Marks the ticket used, atomically: MUST return `NotFound` when it is
    /// unknown, already used or expired at `now`. Of concurrent uses of one
    /// ticket, exactly one gets it.
    fn use_login_ticket(&self, ticket_id: &str, now: Timestamp)
    -> impl Future<Output = RepoResult<LoginTicket>> + Send;
}

/// A user's open tickets and latest assignment ([`TicketRepository::user_loads`]).
pub type UserLoad = (i64, Option<Timestamp>);

/// Tickets, their details, attachments and participants.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait TicketRepository: Send + Sync + 'static {
    /// Writes everything one incoming mail produces in one transaction:
    /// the ticket (new, or updated and possibly reopened), the detail, its
    /// attachments, participants and notices, whose ids it returns in the
    /// order of `incoming.notices`. MUST return `Duplicate`,
    /// writing nothing, when a detail with the same dedupe key exists (also
    /// when a concurrent call stored it first), and `NotFound` when an
    /// existing target ticket is gone.
    fn store_incoming(&self, incoming: NewIncoming) -> impl Future<Output = RepoResult<StoredIncoming>> + Send;
    /// Several incoming mails, each written as [`store_incoming`] writes
    /// one, in order, all in one transaction: every one is stored or none.
    /// The results come in the order of `batch`. An error does not say which
    /// mail caused it (store them one by one to find out).
    ///
    /// [`store_incoming`]: TicketRepository::store_incoming
    fn store_incoming_batch(
        &self,
        batch: &[NewIncoming],
    ) -> impl Future<Output = RepoResult<Vec<StoredIncoming>>> + Send;
    fn find_ticket(&self, id: i64) -> impl Future<Output = RepoResult<Option<Ticket>>> + Send;
    /// The newest ticket, message and event ids, of one ticket's or of all
    /// (0 where there is none).
    fn activity_marks(&self, ticket_id: Option<i64>) -> impl Future<Output = RepoResult<ActivityMarks>> + Send;
    fn find_detail(&self, id: i64) -> impl Future<Output = RepoResult<Option<TicketDetail>>> + Send;
    fn find_detail_by_dedupe(&self, key: &str) -> impl Future<Output = RepoResult<Option<TicketDetail>>> + Send;
    /// The details stored under any of `keys` (one lookup for a batch).
    fn find_details_by_dedupe(&self, keys: &[String]) -> impl Future<Output = RepoResult<Vec<TicketDetail>>> + Send;
    /// The ticket holding a stored message with this Message-ID hash.
    fn ticket_of_message(&self, message_id_hash: &str) -> impl Future<Output = RepoResult<Option<i64>>> + Send;
    /// Details of a ticket, oldest first.
    fn details_of(&self, ticket_id: i64) -> impl Future<Output = RepoResult<Vec<TicketDetail>>> + Send;
    fn attachments_of(&self, detail_id: i64) -> impl Future<Output = RepoResult<Vec<Attachment>>> + Send;
    /// Case-insensitive.
    fn is_participant(&self, ticket_id: i64, email: &str) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Active users of the department with `acceso_ticket` S, with their
    /// open tickets and last assignment.
    fn operator_loads(&self, department_id: i64) -> impl Future<Output = RepoResult<Vec<OperatorLoad>>> + Send;
    /// The open tickets and last assignment of each of `users`, in their
    /// order (0 and `None` for a user with none): [`operator_loads`]
    /// without the users, for a caller that holds them.
    ///
    /// [`operator_loads`]: TicketRepository::operator_loads
    fn user_loads(&self, users: &[i64]) -> impl Future<Output = RepoResult<Vec<UserLoad>>> + Send;
    /// What opening tickets reads, in one read where the store is remote:
    /// [`user_loads`] of `users`, and [`OutboxRepository::count_notices_to`]
    /// of `kind` to `recipients` since `since`; each in its order.
    ///
    /// [`user_loads`]: TicketRepository::user_loads
    /// [`OutboxRepository::count_notices_to`]: crate::ports::OutboxRepository::count_notices_to
    fn loads_and_notices_sent(
        &self,
        users: &[i64],
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> impl Future<Output = RepoResult<(Vec<UserLoad>, Vec<i64>)>> + Send;
    /// MUST return `NotFound` for an unknown ticket.
    fn set_ticket_status(
        &self,
        ticket_id: i64,
        status: TicketStatus,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
}

/// Working tickets: the list, the thread's other parts, operators' replies
/// and changes (`ticket`, `detalle_ticket`, `evento_ticket`,
/// `participante_ticket`, `carga_operador`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait TicketWorkRepository: Send + Sync + 'static {
    /// Tickets matching every set filter, by id descending (newest first),
    /// at most `query.limit`. `text` MUST keep the tickets whose messages
    /// (subjects and bodies, together) hold every word of
    /// [`search_words`]`(text)` among their [`message_words`], case- and
    /// accent-insensitively (a ticket appears once however many of its
    /// messages match; no word at all matches nothing), whatever else the
    /// text holds (quotes, operators: never an error); `before_id` keeps
    /// only smaller ids (the cursor); `visible_department` confines to one
    /// department.
    fn list_tickets(&self, query: TicketQuery) -> impl Future<Output = RepoResult<Vec<Ticket>>> + Send;
    /// How many tickets `list_tickets` would find with every filter of
    /// `query` (its order and cursors ignored), counting at most
    /// `query.limit`: a count capped at the limit.
    fn count_tickets(&self, query: TicketQuery) -> impl Future<Output = RepoResult<i64>> + Send;
    /// The events of a ticket, oldest first.
    fn events_of(&self, ticket_id: i64) -> impl Future<Output = RepoResult<Vec<TicketEvent>>> + Send;
    /// The participants' addresses, lower-case, sorted.
    fn participants_of(&self, ticket_id: i64) -> impl Future<Output = RepoResult<Vec<String>>> + Send;
    /// The attachments of every message of the ticket, by id.
    fn ticket_attachments(&self, ticket_id: i64) -> impl Future<Output = RepoResult<Vec<Attachment>>> + Send;
    fn find_attachment(&self, id: i64) -> impl Future<Output = RepoResult<Option<Attachment>>> + Send;
    /// Writes an operator's reply in one transaction: the detail (with its
    /// direction and author), the new participants (existing ones kept),
    /// the notices (due at `notices_due_at`), and `updated_at = now` on the
    /// ticket. MUST return `NotFound` for an unknown ticket, and `Duplicate`
    /// when a detail with the same dedupe key exists, writing nothing.
    fn store_reply(&self, reply: NewReply) -> impl Future<Output = RepoResult<StoredReply>> + Send;
    /// Applies `update.new` in one transaction, only if the ticket still
    /// holds `update.expected` (else `Conflict`, writing nothing; `NotFound`
    /// for an unknown ticket). With it: `closed_at` set when it closes and
    /// cleared when it leaves `cerrado`; the open-ticket counts (a ticket
    /// counts for its assignee while it is not `cerrado`) moved from the old
    /// to the new assignee, and `ultima_asignacion = now` for a new one;
    /// the events; the notices, attached to the ticket's latest message;
    /// `updated_at = now`. Returns the ticket as it became.
    fn update_ticket(&self, update: TicketUpdate) -> impl Future<Output = RepoResult<Ticket>> + Send;
}

/// Service levels (`calendario_laboral`, `feriado`, `politica_sla`,
/// `departamento.fk_id_calendario`, `escalado_sla`, and the clock's columns
/// of `ticket`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait SlaRepository: Send + Sync + 'static {
    /// Every policy, every calendar with its holidays, and the departments'
    /// calendars.
    fn sla_setup(&self) -> impl Future<Output = RepoResult<SlaSetup>> + Send;
    /// Creates or replaces (by name) a calendar, whose zone and hours the
    /// caller checked; returns its id. Its holidays stay.
    fn save_calendar(&self, calendar: NewCalendar) -> impl Future<Output = RepoResult<i64>> + Send;
    /// Adds (`on`) or removes a holiday; `NotFound` for an unknown calendar.
    fn set_holiday(
        &self,
        calendar_id: i64,
        date: chrono::NaiveDate,
        on: bool,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// The department's calendar (`None`: the default one); `NotFound` for
    /// an unknown department or calendar.
    fn set_department_calendar(
        &self,
        department_id: i64,
        calendar_id: Option<i64>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Creates or replaces the policy of `(department, priority)`.
    fn save_policy(&self, policy: NewSlaPolicy) -> impl Future<Output = RepoResult<SlaPolicy>> + Send;
    /// `false` when there was no such policy.
    fn remove_policy(&self, id: i64) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Tickets whose running clock ([`SlaClock::crossed`]) has crossed a
    /// threshold at `now` that was not announced yet (no `escalado_sla`
    /// row), each with that threshold, at most `limit` pairs, the earliest
    /// crossing first. Stopped clocks (`sla_pausado_desde` set) cross
    /// nothing. MUST read through indexes, not every ticket.
    fn sla_crossings(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = RepoResult<Vec<(Ticket, SlaThreshold)>>> + Send;
    /// Claims the announcement of `threshold` for the ticket and writes
    /// its notices (attached to the ticket's latest message, due at
    /// `now`) in one transaction, returning their ids; `None`, writing
    /// nothing, when it was claimed before (by any process: a unique key in
    /// the store decides).
    fn escalate(
        &self,
        ticket_id: i64,
        threshold: SlaThreshold,
        notices: Vec<NewNotice>,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<Option<Vec<i64>>>> + Send;
    /// How many tickets with a clock are in each state at `now` (states
    /// with none may be left out).
    fn sla_counts(&self, now: Timestamp) -> impl Future<Output = RepoResult<Vec<(SlaState, i64)>>> + Send;
}

/// The outbox of notices (`notificacion`, `notificacion_intento`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait OutboxRepository: Send + Sync + 'static {
    /// Leases up to `limit` pending notices that are due and not leased,
    /// until `lease_until`. A notice is leased by one caller at a time.
    fn claim_due_notices(
        &self,
        now: Timestamp,
        limit: i64,
        lease_until: Timestamp,
    ) -> impl Future<Output = RepoResult<Vec<Notice>>> + Send;
    /// Leases these notices if they are pending and not leased (due or not).
    fn claim_notices(
        &self,
        ids: Vec<i64>,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> impl Future<Output = RepoResult<Vec<Notice>>> + Send;
    /// Records an attempt and its outcome, and releases the lease; a
    /// failure's follow-up is written in the same transaction (its notices
    /// on the notice's message).
    fn record_attempt(
        &self,
        notice_id: i64,
        now: Timestamp,
        outcome: AttemptOutcome,
    ) -> impl Future<Output = RepoResult<Notice>> + Send;
    fn notices_of_detail(&self, detail_id: i64) -> impl Future<Output = RepoResult<Vec<Notice>>> + Send;
    /// Every notice of a ticket, ordered by id.
    fn notices_of_ticket(&self, ticket_id: i64) -> impl Future<Output = RepoResult<Vec<Notice>>> + Send;
    /// Notices of this kind to this recipient created at or after `since`.
    fn count_notices_since(
        &self,
        kind: NoticeKind,
        recipient: &str,
        since: Timestamp,
    ) -> impl Future<Output = RepoResult<i64>> + Send;
    /// [`count_notices_since`] for several recipients in one read: their
    /// counts, in the order of `recipients`.
    ///
    /// [`count_notices_since`]: OutboxRepository::count_notices_since
    fn count_notices_to(
        &self,
        kind: NoticeKind,
        recipients: &[String],
        since: Timestamp,
    ) -> impl Future<Output = RepoResult<Vec<i64>>> + Send;
    /// (notice id, attempt time, success) of every attempt, oldest first.
    fn attempts_of(&self, notice_id: i64) -> impl Future<Output = RepoResult<Vec<(Timestamp, bool)>>> + Send;
    fn pending_notices(&self) -> impl Future<Output = RepoResult<i64>> + Send;
}

/// Outgoing webhooks: subscriptions (`webhook`), the events announced
/// (`webhook_evento`) and their deliveries (`webhook_entrega`).
///
/// Events are written by `store_incoming`, `store_reply` and
/// `update_ticket`, in their transaction, from their `webhook_events`: an
/// event that an active subscription wants (at that moment) MUST be stored
/// once with its body ([`NewWebhookEvent::body`] of the ticket's id and,
/// when the event has a message, the new detail's), with one pending
/// delivery, due at once, per such subscription; an event that none wants
/// is not stored. Nothing of it is written when the change is refused.
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait WebhookRepository: Send + Sync + 'static {
    fn create_webhook(&self, new: NewWebhook) -> impl Future<Output = RepoResult<Webhook>> + Send;
    /// Every subscription, by id.
    fn list_webhooks(&self) -> impl Future<Output = RepoResult<Vec<Webhook>>> + Send;
    fn find_webhook(&self, id: i64) -> impl Future<Output = RepoResult<Option<Webhook>>> + Send;
    /// Replaces the sealed secret; attempts made from now on sign with it.
    /// MUST return `NotFound` for an unknown subscription.
    fn set_webhook_secret(
        &self,
        id: i64,
        sealed_secret: Vec<u8>,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Deletes the subscription with its deliveries (pending or not), and
    /// the events no delivery names any more. MUST return `NotFound` for an
    /// unknown subscription.
    fn remove_webhook(&self, id: i64) -> impl Future<Output = RepoResult<()>> + Send;
    /// Leases up to `limit` pending deliveries that are due and not leased
    /// (or whose lease ran out), oldest first, until `lease_until`. A
    /// delivery is leased by one caller at a time, also across processes.
    fn claim_due_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
        lease_until: Timestamp,
    ) -> impl Future<Output = RepoResult<Vec<WebhookDelivery>>> + Send;
    /// Records an attempt: one more attempt, the lease released; `Sent`:
    /// `enviada` at `now`; `Retry`: the error and when to try again;
    /// `Failed`: `fallida` with the error. MUST return `NotFound` for an
    /// unknown delivery.
    fn record_delivery(
        &self,
        id: i64,
        now: Timestamp,
        outcome: DeliveryOutcome,
    ) -> impl Future<Output = RepoResult<WebhookDelivery>> + Send;
    /// The deliveries of one event, by id.
    fn deliveries_of_event(&self, event_id: &str) -> impl Future<Output = RepoResult<Vec<WebhookDelivery>>> + Send;
    /// Deliveries still `pendiente`.
    fn pending_deliveries(&self) -> impl Future<Output = RepoResult<i64>> + Send;
    /// Deletes up to `limit` finished deliveries (`enviada` or `fallida`)
    /// created before `before`, oldest first, and then those of their events
    /// that no delivery names any more; returns the deliveries deleted. A
    /// pending delivery is never deleted, however old, nor is its event.
    fn purge_finished_deliveries(&self, before: Timestamp, limit: i64) -> impl Future<Output = RepoResult<u64>> + Send;
}

/// Mail held instead of becoming a ticket (`correo_retenido`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait HeldMailRepository: Send + Sync + 'static {
    /// MUST be idempotent per dedupe key: holding the same mail again
    /// returns the first entry unchanged.
    fn hold(&self, new: NewHeldMail) -> impl Future<Output = RepoResult<HeldMail>> + Send;
    /// Entries ordered by id; released ones only when asked.
    fn held_mail(&self, include_released: bool) -> impl Future<Output = RepoResult<Vec<HeldMail>>> + Send;
    fn find_held(&self, id: i64) -> impl Future<Output = RepoResult<Option<HeldMail>>> + Send;
    /// Records the ticket a held mail became. MUST return `NotFound` for an
    /// unknown id; an entry released before keeps its first ticket.
    fn mark_released(
        &self,
        id: i64,
        ticket_id: i64,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<HeldMail>> + Send;
}

/// The mail-reading channel's checkpoints (`correo_lectura`) and quarantine
/// (`correo_cuarentena`).
#[cfg_attr(any(test, feature = "testing"), mockall::automock)]
pub trait ReaderStateRepository: Send + Sync + 'static {
    /// `None` until a checkpoint is saved for this account and mailbox.
    fn checkpoint(&self, account_id: i64, mailbox: &str)
    -> impl Future<Output = RepoResult<Option<Checkpoint>>> + Send;
    /// Replaces the checkpoint of this account and mailbox.
    fn save_checkpoint(
        &self,
        account_id: i64,
        mailbox: &str,
        checkpoint: Checkpoint,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// MUST be idempotent per location (account, mailbox, UIDVALIDITY, UID):
    /// quarantining the same mail again returns the first entry unchanged.
    fn quarantine(&self, new: NewQuarantined) -> impl Future<Output = RepoResult<QuarantinedMail>> + Send;
    /// Entries ordered by id; resolved ones only when asked.
    fn quarantined(&self, include_resolved: bool) -> impl Future<Output = RepoResult<Vec<QuarantinedMail>>> + Send;
    fn find_quarantined(&self, id: i64) -> impl Future<Output = RepoResult<Option<QuarantinedMail>>> + Send;
    /// Records a retry: its outcome (`ticket_id` when it became a ticket,
    /// else the new reason and detail) and one more attempt. MUST return
    /// `NotFound` for an unknown id.
    fn record_retry(
        &self,
        id: i64,
        outcome: Result<i64, (QuarantineReason, String)>,
        now: Timestamp,
    ) -> impl Future<Output = RepoResult<QuarantinedMail>> + Send;
}
