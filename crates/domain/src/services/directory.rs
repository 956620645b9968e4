//! Internal users: the `UsuarioInterno/get` query.

use std::sync::Arc;

use crate::error::RepoError;
use crate::model::{InternalUser, UserFilter};
use crate::ports::{Clock, UserRepository};
use crate::services::cache::TtlCache;

pub struct DirectoryService<R: UserRepository> {
    repo: Arc<R>,
    clock: Arc<dyn Clock>,
    /// Answers kept for a short, configured while (none by default).
    answers: TtlCache<UserFilter, Vec<InternalUser>>,
}

impl<R: UserRepository> DirectoryService<R> {
    pub fn new(repo: Arc<R>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock, answers: TtlCache::new(std::time::Duration::ZERO) }
    }

    /// Keeps each answer for `ttl`: a change made meanwhile (by the admin
    /// commands, or another server) shows once it has passed. Zero: every
    /// query reads the store.
    pub fn with_cache(mut self, ttl: std::time::Duration) -> Self {
        self.answers = TtlCache::new(ttl);
        self
    }

    /// Users matching every given criterion. Blank criteria are ignored; a
    /// filter with none left finds nobody (the HTTP layer's
    /// `required_without_all` rule normally refuses it first).
    pub async fn find_users(&self, filter: UserFilter) -> Result<Vec<InternalUser>, RepoError> {
        let clean = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let filter =
            UserFilter { login: clean(filter.login), email: clean(filter.email), department_id: filter.department_id };
        if filter == UserFilter::default() {
            return Ok(Vec::new());
        }
        let load = || self.repo.find_users(filter.clone());
        self.answers.get_or_load(filter.clone(), self.clock.now(), load, |_| true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserStatus;
    use crate::testing::{InMemoryStore, ManualClock, contract::sample_user};

    #[tokio::test]
    async fn answers_are_kept_for_the_configured_while_only() {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(crate::ports::SystemClock.now()));
        let ana = store.create_user(sample_user("ana", "ana@x.test", None)).await.unwrap();
        let by_login = || UserFilter { login: Some("ana".into()), ..Default::default() };
        let status = async |d: &DirectoryService<InMemoryStore>| d.find_users(by_login()).await.unwrap()[0].status;
        let cached = DirectoryService::new(store.clone(), clock.clone()).with_cache(std::time::Duration::from_secs(1));
        let uncached = DirectoryService::new(store.clone(), clock.clone());
        assert_eq!(status(&cached).await, UserStatus::Active);
        store.set_user_status(ana.id, UserStatus::Inactive).await.unwrap();
        assert_eq!(status(&uncached).await, UserStatus::Inactive, "no cache: read every time");
        assert_eq!(status(&cached).await, UserStatus::Active, "within the second: the answer kept");
        clock.advance(chrono::Duration::milliseconds(1001));
        assert_eq!(status(&cached).await, UserStatus::Inactive, "after it: read again");
    }
}
