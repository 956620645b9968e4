//! Mailbox accounts for the mail-reading channel (`correo/getConfigCorreos`).

use std::sync::Arc;

use crate::crypto::SecretBox;
use crate::error::RepoError;
use crate::model::{MailAccount, MailAccountFilter, MailAccountWithPassword, NewMailAccount, Status};
use crate::ports::MailAccountRepository;

#[derive(Debug, thiserror::Error)]
pub enum MailAccountError {
    /// A stored password that the configured key cannot open: the key was
    /// changed or the row is corrupt. An operator must fix it.
    #[error("the password of mail account {0} cannot be opened with the configured key")]
    Unseal(i64),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// What an administrator gives to add a mailbox; the password is sealed here.
#[derive(Debug, Clone)]
pub struct MailAccountInput {
    pub host: String,
    pub user: String,
    pub password: String,
    pub port: String,
    pub mailboxes: Vec<String>,
    pub department_id: i64,
    pub status: Status,
    pub send_acknowledgement: bool,
}

pub struct MailAccountService<R: MailAccountRepository> {
    repo: Arc<R>,
    secret_box: SecretBox,
}

impl<R: MailAccountRepository> MailAccountService<R> {
    pub fn new(repo: Arc<R>, secret_box: SecretBox) -> Self {
        Self { repo, secret_box }
    }

    pub async fn add(&self, input: MailAccountInput) -> Result<MailAccount, MailAccountError> {
        let mailboxes = if input.mailboxes.is_empty() { vec!["INBOX".to_string()] } else { input.mailboxes };
        Ok(self
            .repo
            .create_mail_account(NewMailAccount {
                host: input.host,
                user: input.user.trim().to_lowercase(),
                sealed_password: self.secret_box.seal(&input.password),
                port: input.port,
                mailboxes,
                department_id: input.department_id,
                status: input.status,
                send_acknowledgement: input.send_acknowledgement,
            })
            .await?)
    }

    /// The accounts matching the filter, passwords opened. One account whose
    /// password cannot be opened fails the whole answer rather than handing
    /// the reader a wrong password.
    pub async fn list_with_passwords(
        &self,
        filter: MailAccountFilter,
    ) -> Result<Vec<MailAccountWithPassword>, MailAccountError> {
        let accounts = self.repo.find_mail_accounts(filter).await?;
        accounts
            .into_iter()
            .map(|account| {
                let password =
                    self.secret_box.open(&account.sealed_password).map_err(|_| MailAccountError::Unseal(account.id))?;
                Ok(MailAccountWithPassword { account, password })
            })
            .collect()
    }
}
