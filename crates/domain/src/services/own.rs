//! The helpdesk's own addresses: every mailbox of the reading channel, the
//! SMTP sender and `mail.own_addresses`. They are never participants, never
//! acknowledged, never mailed; mail from them that continues no ticket is
//! held (see `IngestService`).

use crate::error::RepoError;
use crate::model::{Address, MailAccount, MailAccountFilter, Timestamp};
use crate::ports::MailAccountRepository;
use crate::services::cache::TtlCache;

/// The addresses configured as ours, and the mailboxes read from the store
/// (kept as long as the rest of the routing set-up).
pub struct OwnAddresses {
    fixed: Vec<Address>,
    mailboxes: TtlCache<(), Vec<Address>>,
}

impl OwnAddresses {
    /// `fixed`: the SMTP sender and `mail.own_addresses`; `ttl`: how long the
    /// mailboxes are kept in memory.
    pub fn new(fixed: Vec<Address>, ttl: std::time::Duration) -> Self {
        Self { fixed, mailboxes: TtlCache::new(ttl) }
    }

    /// None configured: only the mailboxes count (tests, tools).
    pub fn mailboxes_only() -> Self {
        Self::new(Vec::new(), std::time::Duration::ZERO)
    }

    /// Our addresses as of now, the mailboxes read from `repo` (or memory).
    pub async fn load<R: MailAccountRepository>(&self, repo: &R, now: Timestamp) -> Result<OwnSet, RepoError> {
        let load = || async {
            let accounts = repo.find_mail_accounts(MailAccountFilter::default()).await?;
            Ok::<_, RepoError>(mailbox_addresses(&accounts))
        };
        let mailboxes = self.mailboxes.get_or_load((), now, load, |_| true).await?;
        Ok(self.with_mailboxes(mailboxes))
    }

    /// Our addresses, given the mail accounts the caller read already.
    pub fn with_accounts(&self, accounts: &[MailAccount]) -> OwnSet {
        self.with_mailboxes(mailbox_addresses(accounts))
    }

    fn with_mailboxes(&self, mut all: Vec<Address>) -> OwnSet {
        all.extend(self.fixed.iter().cloned());
        all.sort();
        all.dedup();
        OwnSet(all)
    }
}

fn mailbox_addresses(accounts: &[MailAccount]) -> Vec<Address> {
    accounts.iter().filter_map(|a| Address::parse(&a.user)).collect()
}

/// The helpdesk's own addresses at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnSet(Vec<Address>);

impl OwnSet {
    /// Whether `address` (a bare address or a mailbox) is one of ours.
    pub fn contains(&self, address: &str) -> bool {
        match Address::parse(address) {
            Some(a) => self.0.binary_search(&a).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_whatever_the_case_or_display_name() {
        let own = OwnAddresses::new(vec![Address::parse("Mesa <helpdesk@Mesa.test>").unwrap()], Default::default());
        let set = own.with_accounts(&[]);
        assert!(set.contains("HELPDESK@mesa.test"));
        assert!(set.contains("Mesa de ayuda <helpdesk@mesa.test>"));
        assert!(!set.contains("cliente@mesa.test"));
        assert!(!set.contains("no es una dirección"));
    }
}
