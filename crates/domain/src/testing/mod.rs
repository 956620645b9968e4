//! Test support (feature `testing`): the in-memory store, the repository
//! contract suite every store adapter runs, and fixtures.

pub mod contract;
mod memory;

pub use memory::InMemoryStore;

use std::sync::Mutex;

use crate::model::Timestamp;
use crate::ports::Clock;

/// A clock that moves only when told: expiry without sleeping.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }
    /// Starts at the real current time.
    pub fn now_utc() -> Self {
        Self::new(crate::ports::SystemClock.now())
    }
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// An [`AuditSpool`](crate::ports::AuditSpool) in memory, for unit tests of
/// the bitácora (the file spool has its own tests in the database adapter).
#[derive(Default)]
pub struct MemorySpool {
    records: Mutex<Vec<crate::model::SpooledAudit>>,
    rejected: Mutex<Vec<(crate::model::SpooledAudit, String)>>,
}

impl MemorySpool {
    pub fn records(&self) -> Vec<crate::model::SpooledAudit> {
        self.records.lock().expect("spool lock").clone()
    }
    pub fn rejected(&self) -> Vec<(crate::model::SpooledAudit, String)> {
        self.rejected.lock().expect("spool lock").clone()
    }
}

impl crate::ports::AuditSpool for MemorySpool {
    fn append<'a>(
        &'a self,
        records: &'a [crate::model::SpooledAudit],
    ) -> crate::ports::BoxFuture<'a, Result<(), crate::ports::SpoolError>> {
        self.records.lock().expect("spool lock").extend_from_slice(records);
        Box::pin(std::future::ready(Ok(())))
    }
    fn peek(
        &self,
        limit: usize,
    ) -> crate::ports::BoxFuture<'_, Result<crate::ports::SpoolRead, crate::ports::SpoolError>> {
        let all = self.records.lock().expect("spool lock");
        let records: Vec<_> = all.iter().take(limit).cloned().collect();
        let cursor = crate::ports::SpoolCursor { head: 0, position: records.len() as u64 };
        Box::pin(std::future::ready(Ok(crate::ports::SpoolRead { records, cursor })))
    }
    fn settle(
        &self,
        cursor: crate::ports::SpoolCursor,
        keep: Vec<crate::model::SpooledAudit>,
    ) -> crate::ports::BoxFuture<'_, Result<(), crate::ports::SpoolError>> {
        let mut all = self.records.lock().expect("spool lock");
        all.splice(..cursor.position as usize, keep);
        Box::pin(std::future::ready(Ok(())))
    }
    fn reject<'a>(
        &'a self,
        record: &'a crate::model::SpooledAudit,
        reason: &'a str,
    ) -> crate::ports::BoxFuture<'a, Result<(), crate::ports::SpoolError>> {
        self.rejected.lock().expect("spool lock").push((record.clone(), reason.to_string()));
        Box::pin(std::future::ready(Ok(())))
    }
    fn stats(&self) -> crate::ports::SpoolStats {
        let records = self.records.lock().expect("spool lock").len() as u64;
        crate::ports::SpoolStats { records, bytes: records, quarantined: self.rejected().len() as u64 }
    }
}

/// Stamps the repository contract suite as `#[tokio::test]`s for one store.
///
/// `$factory` is an async function returning a fresh, empty, migrated store;
/// extra attributes (for example `#[ignore = "..."]`) go on every test.
///
/// ```text
/// helpdesk_domain::repository_contract_tests!(fresh_sqlite_store);
/// ```
#[macro_export]
macro_rules! repository_contract_tests {
    ($factory:path $(, #[$meta:meta])* ) => {
        $crate::__contract_cases!($factory, [$(#[$meta])*];
            products_round_trip_and_alias_is_unique_ignoring_case,
            product_access_reset_pages_and_grants,
            departments_and_roles,
            users_round_trip_every_field,
            user_login_and_email_are_unique,
            user_references_must_exist,
            user_filters_combine_and_an_empty_filter_finds_nobody,
            user_credentials_by_login_or_email,
            user_updates_and_devices,
            consumers_round_trip_with_grants,
            consumer_updates_and_unknown_names,
            consumer_lookup_is_case_sensitive_but_names_unique_ignoring_case,
            audit_records_are_written_in_batches_and_link,
            mail_accounts_filter_and_uniqueness,
            health_ping,
            concurrent_audit_reservations_never_overlap,
            sessions_rotate_once_and_revoke_per_user,
            concurrent_rotations_of_one_token_have_one_winner,
            password_resets_complete_once_and_revoke_sessions,
            throttle_counts_windows_and_locks,
            concurrent_attempts_are_granted_up_to_the_limit,
            logins_succeeding_at_once_beside_other_writes_all_land,
            a_login_succeeds_all_at_once_or_not_at_all,
            stale_throttle_keys_are_purged_and_live_ones_kept,
            integrated_systems_round_trip_and_update,
            login_tickets_are_used_once_and_expire,
            concurrent_ticket_uses_have_one_winner,
            department_webhooks_are_stored_sealed,
            incoming_mail_creates_a_whole_ticket,
            incoming_mail_joins_and_reopens_a_ticket,
            duplicates_write_nothing,
            incoming_batches_store_all_in_order_or_nothing,
            a_mail_s_bitacora_record_is_written_with_it,
            concurrent_duplicates_store_once,
            operator_loads_count_open_tickets,
            open_ticket_counts_follow_closing_and_reopening,
            ticket_list_filters_on_every_field,
            ticket_list_pages_by_keyset,
            ticket_list_orders_by_latest_activity,
            ticket_list_searches_the_words_of_each_message,
            replies_are_stored_with_their_author_notices_and_participants,
            ticket_updates_move_loads_and_write_events_and_notices,
            stale_ticket_updates_conflict_and_write_nothing,
            a_threads_attachments_and_participants,
            outbox_leases_attempts_and_outcomes,
            concurrent_claims_lease_each_notice_once,
            webhooks_round_trip_and_rotate_their_secret,
            ticket_changes_record_events_for_their_subscribers,
            webhook_deliveries_lease_attempts_and_outcomes,
            concurrent_claims_lease_each_delivery_once,
            finished_deliveries_are_purged_oldest_first_pending_ones_kept,
            old_audit_records_are_purged_oldest_first,
            reader_checkpoints_and_an_idempotent_quarantine,
            held_mail_is_kept_whole_and_released_once,
            console_sessions_are_touched_forward_and_end_once,
            presence_is_one_row_per_operator_and_ticket_and_expires,
            sla_clocks_are_stored_and_keep_the_first_response,
            ticket_list_filters_by_service_level_and_orders_by_nearest_due,
            sla_counts_per_state,
            sla_crossings_are_escalated_once,
            sla_setup_round_trip,
            users_stop_and_start_taking_tickets
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __contract_cases {
    ($factory:path, [$(#[$meta:meta])*]; $(,)?) => {};
    ($factory:path, [$(#[$meta:meta])*]; $case:ident $(, $rest:ident)* $(,)?) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$meta])*
        async fn $case() {
            let store = $factory().await;
            $crate::testing::contract::$case(::std::sync::Arc::new(store)).await;
        }
        $crate::__contract_cases!($factory, [$(#[$meta])*]; $($rest),*);
    };
}
