//! Consumer authentication and authorisation (`X-User-Consumo`,
//! `X-User-Secret`).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::crypto::{SecretHasher, random_token};
use crate::error::RepoError;
use crate::model::{Consumer, Endpoint, NewConsumer, Status};
use crate::ports::{Clock, ConsumerRepository};
use crate::services::cache::TtlCache;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Missing, unknown, wrong or disabled: one answer for all four.
    #[error("invalid consumer credentials")]
    InvalidCredentials,
    /// A valid consumer calling an endpoint outside its grants.
    #[error("consumer {consumer} is not granted {endpoint}")]
    Forbidden { consumer: String, endpoint: Endpoint },
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// Length of generated consumer secrets: 48 alphanumerics, about 285 bits.
pub const CONSUMER_SECRET_LEN: usize = 48;

pub struct AccessService<R: ConsumerRepository> {
    repo: Arc<R>,
    hasher: SecretHasher,
    clock: Arc<dyn Clock>,
    /// Consumers found lately, by name, so that a request costs no lookup.
    /// A change made elsewhere (the admin command, another server) shows
    /// within the cache's lifetime; one made through this service at once.
    /// Unknown names are not kept.
    found: TtlCache<String, Option<Consumer>>,
}

impl<R: ConsumerRepository> AccessService<R> {
    pub fn new(repo: Arc<R>, hasher: SecretHasher, clock: Arc<dyn Clock>) -> Self {
        Self { repo, hasher, clock, found: TtlCache::new(std::time::Duration::ZERO) }
    }

    /// Keeps consumers found for `ttl` (zero: no cache).
    pub fn with_cache(mut self, ttl: std::time::Duration) -> Self {
        self.found = TtlCache::new(ttl);
        self
    }

    async fn find(&self, name: &str) -> Result<Option<Consumer>, RepoError> {
        let load = || self.repo.find_consumer(name);
        self.found.get_or_load(name.to_string(), self.clock.now(), load, Option::is_some).await
    }

    fn forget(&self, name: &str) {
        self.found.forget(name);
    }

    /// Checks the consumer's credentials and that it may call `endpoint`.
    /// The secret is compared in constant time; an unknown consumer costs the
    /// same HMAC as a known one.
    pub async fn authorize(
        &self,
        name: Option<&str>,
        secret: Option<&str>,
        endpoint: Endpoint,
    ) -> Result<Consumer, AccessError> {
        let (Some(name), Some(secret)) = (name, secret) else {
            return Err(AccessError::InvalidCredentials);
        };
        if name.is_empty() || secret.is_empty() || name.len() > 100 || secret.len() > 255 {
            return Err(AccessError::InvalidCredentials);
        }
        let consumer = self.find(name).await?;
        let Some(consumer) = consumer else {
            // Same work as the known case, so timing tells nothing.
            let _ = self.hasher.verify(secret, &"0".repeat(64));
            return Err(AccessError::InvalidCredentials);
        };
        if !self.hasher.verify(secret, &consumer.secret_hash) || !consumer.status.is_active() {
            return Err(AccessError::InvalidCredentials);
        }
        if !consumer.may_call(endpoint) {
            return Err(AccessError::Forbidden { consumer: consumer.name.clone(), endpoint });
        }
        Ok(consumer)
    }

    /// Creates a consumer with a fresh random secret, returned once.
    pub async fn create(&self, name: &str, grants: BTreeSet<Endpoint>) -> Result<(Consumer, String), AccessError> {
        let secret = random_token(CONSUMER_SECRET_LEN);
        let consumer = self.create_with_secret(name, &secret, grants).await?;
        Ok((consumer, secret))
    }

    /// Creates a consumer with a secret chosen by the caller (the dev seed
    /// uses the documented example credentials).
    pub async fn create_with_secret(
        &self,
        name: &str,
        secret: &str,
        grants: BTreeSet<Endpoint>,
    ) -> Result<Consumer, AccessError> {
        let consumer = self
            .repo
            .create_consumer(NewConsumer {
                name: name.to_string(),
                secret_hash: self.hasher.hash(secret),
                grants,
                created_at: self.clock.now(),
            })
            .await?;
        Ok(consumer)
    }

    /// Replaces a consumer's secret with a fresh one, returned once.
    pub async fn rotate_secret(&self, name: &str) -> Result<String, AccessError> {
        let secret = random_token(CONSUMER_SECRET_LEN);
        self.repo.set_consumer_secret(name, &self.hasher.hash(&secret)).await?;
        self.forget(name);
        Ok(secret)
    }

    pub async fn set_status(&self, name: &str, status: Status) -> Result<(), AccessError> {
        self.repo.set_consumer_status(name, status).await?;
        self.forget(name);
        Ok(())
    }

    pub async fn set_grants(&self, name: &str, grants: BTreeSet<Endpoint>) -> Result<(), AccessError> {
        self.repo.set_consumer_grants(name, grants).await?;
        self.forget(name);
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Consumer>, AccessError> {
        Ok(self.repo.list_consumers().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockConsumerRepository, SystemClock};

    fn consumer(hasher: &SecretHasher, status: Status, grants: &[Endpoint]) -> Consumer {
        Consumer {
            id: 1,
            name: "canal".into(),
            secret_hash: hasher.hash("right"),
            status,
            grants: grants.iter().copied().collect(),
            created_at: SystemClock.now(),
        }
    }

    fn service(found: Option<Consumer>) -> AccessService<MockConsumerRepository> {
        let mut repo = MockConsumerRepository::new();
        repo.expect_find_consumer().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
        AccessService::new(Arc::new(repo), SecretHasher::new([3; 32]), Arc::new(SystemClock))
    }

    #[tokio::test]
    async fn right_secret_and_grant_pass() {
        let h = SecretHasher::new([3; 32]);
        let s = service(Some(consumer(&h, Status::Active, &[Endpoint::MailSave])));
        let c = s.authorize(Some("canal"), Some("right"), Endpoint::MailSave).await.unwrap();
        assert_eq!(c.id, 1);
    }

    #[tokio::test]
    async fn wrong_missing_unknown_and_disabled_are_the_same_refusal() {
        let h = SecretHasher::new([3; 32]);
        let active = Some(consumer(&h, Status::Active, &[Endpoint::MailSave]));
        let cases = [
            (active.clone(), Some("canal"), Some("wrong")),
            (active.clone(), None, Some("right")),
            (active.clone(), Some("canal"), None),
            (None, Some("canal"), Some("right")),
            (Some(consumer(&h, Status::Inactive, &[Endpoint::MailSave])), Some("canal"), Some("right")),
        ];
        for (found, name, secret) in cases {
            let err = service(found).authorize(name, secret, Endpoint::MailSave).await.unwrap_err();
            assert!(matches!(err, AccessError::InvalidCredentials), "{err:?}");
        }
    }

    #[tokio::test]
    async fn the_cache_saves_lookups_for_its_lifetime_and_forgets_changes_made_through_it() {
        let h = SecretHasher::new([3; 32]);
        let found = consumer(&h, Status::Active, &[Endpoint::MailSave]);
        let mut repo = MockConsumerRepository::new();
        repo.expect_find_consumer().times(3).returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(Some(found)) })
        });
        repo.expect_set_consumer_status().times(1).returning(|_, _| Box::pin(async { Ok(()) }));
        let clock = Arc::new(crate::testing::ManualClock::new(SystemClock.now()));
        let s = AccessService::new(Arc::new(repo), h, clock.clone()).with_cache(std::time::Duration::from_secs(5));
        for _ in 0..3 {
            s.authorize(Some("canal"), Some("right"), Endpoint::MailSave).await.unwrap();
        }
        // One lookup so far; the wrong secret is still refused from the cache.
        assert!(s.authorize(Some("canal"), Some("wrong"), Endpoint::MailSave).await.is_err());
        clock.advance(chrono::Duration::seconds(6));
        s.authorize(Some("canal"), Some("right"), Endpoint::MailSave).await.unwrap();
        s.set_status("canal", Status::Inactive).await.unwrap();
        s.authorize(Some("canal"), Some("right"), Endpoint::MailSave).await.unwrap();
        // `times(3)` above fails the test if any other call looked it up.
    }

    #[tokio::test]
    async fn an_endpoint_outside_the_grants_is_forbidden() {
        let h = SecretHasher::new([3; 32]);
        let s = service(Some(consumer(&h, Status::Active, &[Endpoint::MailSave])));
        let err = s.authorize(Some("canal"), Some("right"), Endpoint::SsoAccess).await.unwrap_err();
        assert!(matches!(err, AccessError::Forbidden { endpoint: Endpoint::SsoAccess, .. }));
    }
}
