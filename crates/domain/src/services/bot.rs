//! The Synology Chat bot's outgoing webhook: links a Synology user to an
//! internal user and answers them through the bot.

use std::sync::Arc;

use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::crypto::sha256_hex;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{ChatNotifier, NotifyError};

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// Missing or wrong outgoing token (or none configured).
    #[error("invalid Synology token")]
    InvalidToken,
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// What the link did; the reply's outcome is Synology's answer or why it
/// could not be delivered.
#[derive(Debug)]
pub struct BotLink {
    pub user: InternalUser,
    pub reply: Result<Value, NotifyError>,
    /// What the reply says (the chat adapter writes the words), to
    /// [`BotService::resend`] it.
    pub reply_text: ChatContent,
}

/// The ports [`BotService`] calls: any store providing them will do (the
/// whole `Store`, or a fake or mock of just these).
pub trait BotPorts: crate::ports::UserRepository {}
impl<T: crate::ports::UserRepository> BotPorts for T {}

pub struct BotService<R: BotPorts, C: ChatNotifier> {
    repo: Arc<R>,
    chat: Arc<C>,
    /// SHA-256 of the configured outgoing token; `None`: refuse every call.
    token_hash: Option<String>,
}

impl<R: BotPorts, C: ChatNotifier> BotService<R, C> {
    pub fn new(repo: Arc<R>, chat: Arc<C>, outgoing_token: &str) -> Self {
        let token = outgoing_token.trim();
        Self { repo, chat, token_hash: (!token.is_empty()).then(|| sha256_hex(token.as_bytes())) }
    }

    /// Constant time, whatever the lengths (digests are compared).
    pub fn check_token(&self, presented: Option<&str>) -> Result<(), BotError> {
        let Some(expected) = &self.token_hash else { return Err(BotError::InvalidToken) };
        let presented = sha256_hex(presented.unwrap_or_default().as_bytes());
        let ok: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        if ok { Ok(()) } else { Err(BotError::InvalidToken) }
    }

    /// Saves `synology_user_id` on the user named `username`, then replies to
    /// them through the bot. A failed reply does not undo the link.
    pub async fn link(&self, synology_user_id: i64, username: &str) -> Result<BotLink, BotError> {
        let name = username.trim();
        let filter = UserFilter { login: Some(name.to_string()), ..Default::default() };
        let user = self
            .repo
            .find_users(filter)
            .await?
            .into_iter()
            .find(|u| u.login.eq_ignore_ascii_case(name) || u.username.eq_ignore_ascii_case(name))
            .ok_or_else(|| BotError::UnknownUser(name.to_string()))?;
        self.repo.set_synology_id(user.id, synology_user_id).await?;
        let reply_text = ChatContent::LinkGreeting { name: user.name.clone(), login: user.login.clone() };
        let reply = self.chat.send_to_user(synology_user_id, reply_text.clone()).await;
        let user = InternalUser { synology_id: Some(synology_user_id), ..user };
        Ok(BotLink { user, reply, reply_text })
    }

    /// Sends a reply again (the caller retries a failed one in the background).
    pub async fn resend(&self, synology_user_id: i64, message: ChatContent) -> Result<Value, NotifyError> {
        self.chat.send_to_user(synology_user_id, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockChatNotifier, MockUserRepository};

    async fn ana() -> InternalUser {
        use crate::ports::UserRepository;
        let store = crate::testing::InMemoryStore::new();
        let user = store.create_user(crate::testing::contract::sample_user("ana", "ana@x.test", None)).await.unwrap();
        InternalUser { id: 7, ..user }
    }

    /// The service names only the ports it calls, so a mock of one
    /// repository is enough to drive it.
    #[tokio::test]
    async fn links_through_mocks_of_just_its_ports() {
        let ana = ana().await;
        let greeting = ChatContent::LinkGreeting { name: ana.name.clone(), login: ana.login.clone() };
        let mut users = MockUserRepository::new();
        users.expect_find_users().returning(move |_| {
            let ana = ana.clone();
            Box::pin(async move { Ok(vec![ana]) })
        });
        users
            .expect_set_synology_id()
            .withf(|user, synology| (*user, *synology) == (7, 120))
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(()) }));
        let mut chat = MockChatNotifier::new();
        chat.expect_send_to_user()
            .withf({
                let greeting = greeting.clone();
                move |to, message| *to == 120 && *message == greeting
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Err(NotifyError::Temporary("down".into())) }));
        let bot = BotService::new(Arc::new(users), Arc::new(chat), "secreto");
        bot.check_token(Some("secreto")).unwrap();
        assert!(bot.check_token(Some("otro")).is_err());
        let link = bot.link(120, " ANA ").await.unwrap();
        assert_eq!(link.user.synology_id, Some(120));
        assert!(link.reply.is_err(), "a failed reply does not undo the link");
        assert_eq!(link.reply_text, greeting, "what a resend would say");

        let mut nobody = MockUserRepository::new();
        nobody.expect_find_users().returning(|_| Box::pin(async { Ok(vec![]) }));
        nobody.expect_set_synology_id().never();
        let bot = BotService::new(Arc::new(nobody), Arc::new(MockChatNotifier::new()), "secreto");
        assert!(matches!(bot.link(120, "nadie").await, Err(BotError::UnknownUser(_))));
    }
}
