//! Administration use cases behind the admin command line and the dev seed:
//! products, departments and internal users.

use std::sync::Arc;

use crate::crypto::hash_password;
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{DepartmentRepository, ProductRepository, SessionRepository, UserRepository};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// Minimum password policy for internal users: at least 8 characters, at
/// most 191 (the documented column), not only letters and not only digits.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < 8 {
        return Err("la contraseña debe tener al menos 8 caracteres".into());
    }
    if n > 191 {
        return Err("la contraseña no puede superar 191 caracteres".into());
    }
    if password.chars().all(char::is_alphabetic) || password.chars().all(|c| c.is_ascii_digit()) {
        return Err("la contraseña debe combinar letras con números o símbolos".into());
    }
    Ok(())
}

/// A device PIN: 4 to 12 ASCII digits (the documented `pin` rule).
pub fn check_pin(pin: &str) -> Result<(), String> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("el PIN debe tener de 4 a 12 dígitos".into())
    }
}

/// What an administrator gives to add an internal user.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub user: NewInternalUser,
    pub password: Option<String>,
    /// A device PIN to register with the user: (device name, PIN).
    pub device_pin: Option<(String, String)>,
}

pub struct AdminService<R> {
    repo: Arc<R>,
}

impl<R> AdminService<R>
where
    R: ProductRepository + DepartmentRepository + UserRepository + SessionRepository,
{
    pub fn new(repo: Arc<R>) -> Self {
        Self { repo }
    }

    pub async fn add_product(&self, alias: &str, name: &str) -> Result<Product, AdminError> {
        let alias = alias.trim();
        if alias.is_empty() || alias.chars().count() > 100 {
            return Err(AdminError::Invalid("el alias del producto debe tener de 1 a 100 caracteres".into()));
        }
        Ok(self.repo.create_product(NewProduct { alias: alias.into(), name: name.trim().into() }).await?)
    }

    pub async fn add_department(&self, name: &str, channel: Option<String>) -> Result<Department, AdminError> {
        if name.trim().is_empty() {
            return Err(AdminError::Invalid("el departamento necesita un nombre".into()));
        }
        Ok(self.repo.create_department(NewDepartment { name: name.trim().into(), synology_channel: channel }).await?)
    }

    pub async fn ensure_role(&self, name: &str) -> Result<Role, AdminError> {
        Ok(self.repo.ensure_role(name).await?)
    }

    /// Adds a user, hashing the password and PIN with Argon2id. Runs Argon2
    /// inline: call it from a context that may block (the admin command line).
    pub async fn add_user(&self, input: UserInput) -> Result<(InternalUser, Option<Device>), AdminError> {
        let mut new = input.user;
        new.login = new.login.trim().to_string();
        new.email = new.email.trim().to_lowercase();
        if new.login.is_empty() || new.email.is_empty() || !new.email.contains('@') {
            return Err(AdminError::Invalid("el usuario necesita login y correo válidos".into()));
        }
        if let Some(pw) = &input.password {
            check_password_policy(pw).map_err(AdminError::Invalid)?;
            new.password_hash = Some(hash_password(pw));
        }
        if let Some((_, pin)) = &input.device_pin {
            check_pin(pin).map_err(AdminError::Invalid)?;
        }
        let user = self.repo.create_user(new).await?;
        let device = match input.device_pin {
            Some((name, pin)) => {
                Some(self.repo.add_device(NewDevice { user_id: user.id, name, pin_hash: hash_password(&pin) }).await?)
            }
            None => None,
        };
        Ok((user, device))
    }

    /// Activates or deactivates a user. Deactivating revokes every live
    /// token of theirs, so activating them again later revives none.
    /// Returns the tokens revoked.
    pub async fn set_user_status(&self, user_id: i64, status: UserStatus, now: Timestamp) -> Result<u64, AdminError> {
        self.repo.set_user_status(user_id, status).await?;
        Ok(match status {
            UserStatus::Inactive => self.repo.revoke_user_sessions(user_id, now).await?,
            UserStatus::Active => 0,
        })
    }

    /// Grants or revokes a user's access to a product. Revoking ends their
    /// live tokens of that product. Returns the tokens revoked.
    pub async fn set_product_grant(
        &self,
        user_id: i64,
        product_id: i64,
        granted: bool,
        now: Timestamp,
    ) -> Result<u64, AdminError> {
        self.repo.set_product_grant(user_id, product_id, granted).await?;
        Ok(if granted { 0 } else { self.repo.revoke_product_sessions(user_id, product_id, now).await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(check_password_policy("Cyberf4231&459").is_ok());
        assert!(check_password_policy("short1").is_err());
        assert!(check_password_policy("onlyletters").is_err());
        assert!(check_password_policy("12345678901").is_err());
        assert!(check_password_policy(&"a1".repeat(96)).is_err());
    }

    #[test]
    fn pins_are_4_to_12_ascii_digits() {
        assert!(check_pin("1234").is_ok());
        assert!(check_pin("123456789012").is_ok());
        assert!(check_pin("123").is_err());
        assert!(check_pin("1234567890123").is_err());
        assert!(check_pin("12a4").is_err());
        assert!(check_pin("١٢٣٤").is_err());
    }
}
