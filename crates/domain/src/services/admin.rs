//! Administration use cases behind the admin command line and the dev seed:
//! products, departments, internal users and the service levels' setup.
//! Every rule of these commands is here, so that any driving adapter (the
//! command line today, an admin page tomorrow) finds it.

use std::sync::Arc;

use crate::crypto::{SecretBox, hash_password};
use crate::error::RepoError;
use crate::model::*;
use crate::ports::{DepartmentRepository, ProductRepository, SessionRepository, SlaRepository, UserRepository};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("no product {0}")]
    NoProduct(String),
    #[error("no department {0}")]
    NoDepartment(i64),
    #[error("no user {0}")]
    NoUser(String),
    #[error("no calendar {name:?}; known: {}", known.join(", "))]
    NoCalendar { name: String, known: Vec<String> },
    #[error("no policy {0}")]
    NoPolicy(i64),
    /// A product's reset page that is not an absolute `http(s)` URL.
    #[error("the reset page {0:?} is not an http:// or https:// URL")]
    ResetUrl(String),
    /// A calendar's zone, a calendar's hours, or a policy's targets.
    #[error("invalid {what}")]
    Sla {
        what: SlaPart,
        #[source]
        cause: SlaSetupError,
    },
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

/// Which part of the service levels' setup was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaPart {
    Zone,
    Hours,
    Policy,
}

impl std::fmt::Display for SlaPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SlaPart::Zone => "time zone",
            SlaPart::Hours => "opening hours",
            SlaPart::Policy => "policy",
        })
    }
}

fn sla(what: SlaPart) -> impl FnOnce(SlaSetupError) -> AdminError {
    move |cause| AdminError::Sla { what, cause }
}

/// A product's own password-reset page: an absolute `http(s)` URL.
pub fn is_reset_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !url.chars().any(char::is_whitespace))
}

impl<R> AdminService<R>
where
    R: ProductRepository + DepartmentRepository + UserRepository + SessionRepository + SlaRepository,
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

    pub async fn products(&self) -> Result<Vec<Product>, AdminError> {
        Ok(self.repo.list_products().await?)
    }

    /// The product with this alias (any case).
    pub async fn product(&self, alias: &str) -> Result<Product, AdminError> {
        self.repo.find_product_by_alias(alias.trim()).await?.ok_or_else(|| AdminError::NoProduct(alias.into()))
    }

    /// Changes who may sign in to a product, its reset page or its status.
    pub async fn update_product(&self, alias: &str, change: ProductChange) -> Result<Product, AdminError> {
        if let Some(Some(url)) = &change.reset_url
            && !is_reset_url(url)
        {
            return Err(AdminError::ResetUrl(url.clone()));
        }
        match self.repo.update_product(alias.trim(), change).await {
            Err(RepoError::NotFound) => Err(AdminError::NoProduct(alias.into())),
            other => Ok(other?),
        }
    }

    pub async fn departments(&self) -> Result<Vec<Department>, AdminError> {
        Ok(self.repo.list_departments().await?)
    }

    /// Sets (or, with `None` or an empty token, removes) the incoming-webhook
    /// token of a department's Synology channel, sealed with `secrets`.
    /// Returns whether a token is now set.
    pub async fn set_department_webhook(
        &self,
        secrets: &SecretBox,
        department_id: i64,
        token: Option<&str>,
    ) -> Result<bool, AdminError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        match self.repo.set_department_webhook(department_id, token.map(|t| secrets.seal(t))).await {
            Err(RepoError::NotFound) => Err(AdminError::NoDepartment(department_id)),
            other => other.map(|()| token.is_some()).map_err(AdminError::from),
        }
    }

    /// The user whose login or e-mail this is.
    pub async fn user(&self, login: &str) -> Result<InternalUser, AdminError> {
        match self.repo.find_user_credentials(login.trim()).await? {
            Some((user, _)) => Ok(user),
            None => Err(AdminError::NoUser(login.into())),
        }
    }

    /// Whether the user works tickets (`acceso_ticket`).
    pub async fn set_takes_tickets(&self, user_id: i64, on: bool) -> Result<(), AdminError> {
        match self.repo.set_takes_tickets(user_id, on).await {
            Err(RepoError::NotFound) => Err(AdminError::NoUser(user_id.to_string())),
            other => Ok(other?),
        }
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

/// The service levels' setup: calendars, holidays, policies.
impl<R> AdminService<R>
where
    R: ProductRepository + DepartmentRepository + UserRepository + SessionRepository + SlaRepository,
{
    pub async fn sla_setup(&self) -> Result<SlaSetup, AdminError> {
        Ok(self.repo.sla_setup().await?)
    }

    /// The calendar called `name`.
    async fn calendar_named(&self, name: &str) -> Result<BusinessCalendar, AdminError> {
        let calendars = self.repo.sla_setup().await?.calendars;
        let known: Vec<String> = calendars.iter().map(|c| c.name.clone()).collect();
        let missing = AdminError::NoCalendar { name: name.into(), known };
        calendars.into_iter().find(|c| c.name == name).ok_or(missing)
    }

    /// Creates or replaces (by name) a calendar from its zone (an IANA name)
    /// and its weekly hours as written (`lun-vie 08:00-17:00`).
    pub async fn save_calendar(&self, name: &str, zone: &str, hours: &str) -> Result<BusinessCalendar, AdminError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AdminError::Invalid("el calendario necesita un nombre".into()));
        }
        let zone = parse_zone(zone.trim()).map_err(sla(SlaPart::Zone))?;
        let hours = WeeklyHours::parse(hours).map_err(sla(SlaPart::Hours))?;
        let id = self
            .repo
            .save_calendar(NewCalendar { name: name.into(), zone: zone.name().into(), hours: hours.to_string() })
            .await?;
        let holidays = self.calendar_named(name).await.map(|c| c.holidays).unwrap_or_default();
        Ok(BusinessCalendar { id, name: name.into(), zone, hours, holidays })
    }

    /// The department keeps the calendar called `calendar` (`None`: the
    /// default one).
    pub async fn assign_calendar(&self, department_id: i64, calendar: Option<&str>) -> Result<(), AdminError> {
        let calendar_id = match calendar {
            Some(name) => Some(self.calendar_named(name).await?.id),
            None => None,
        };
        match self.repo.set_department_calendar(department_id, calendar_id).await {
            Err(RepoError::NotFound) => Err(AdminError::NoDepartment(department_id)),
            other => Ok(other?),
        }
    }

    /// Adds (`on`) or removes a holiday of the calendar called `calendar`.
    pub async fn set_holiday(&self, calendar: &str, day: chrono::NaiveDate, on: bool) -> Result<(), AdminError> {
        let id = self.calendar_named(calendar).await?.id;
        Ok(self.repo.set_holiday(id, day, on).await?)
    }

    /// Creates or replaces the policy of `(department, priority)`, its
    /// targets checked and its department existing.
    pub async fn save_policy(&self, policy: NewSlaPolicy) -> Result<SlaPolicy, AdminError> {
        policy.check().map_err(sla(SlaPart::Policy))?;
        if let Some(id) = policy.department_id
            && self.repo.find_department(id).await?.is_none()
        {
            return Err(AdminError::NoDepartment(id));
        }
        Ok(self.repo.save_policy(policy).await?)
    }

    pub async fn remove_policy(&self, id: i64) -> Result<(), AdminError> {
        match self.repo.remove_policy(id).await? {
            true => Ok(()),
            false => Err(AdminError::NoPolicy(id)),
        }
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

    /// The rules the command line relied on, now the service's: each
    /// refusal names what was wrong and writes nothing.
    #[tokio::test]
    async fn refusals_name_what_is_wrong_and_write_nothing() {
        use crate::testing::InMemoryStore;
        let store = Arc::new(InMemoryStore::new());
        let admin = AdminService::new(store.clone());
        let department = admin.add_department("Soporte", None).await.unwrap();
        admin.add_product("mesa", "Mesa").await.unwrap();

        let bad_page = ProductChange { reset_url: Some(Some("javascript:alert(1)".into())), ..Default::default() };
        assert!(matches!(admin.update_product("mesa", bad_page).await, Err(AdminError::ResetUrl(_))));
        assert_eq!(admin.product("MESA").await.unwrap().reset_url, None, "nothing written");
        let page =
            ProductChange { reset_url: Some(Some("https://mesa.example.test/clave".into())), ..Default::default() };
        assert!(admin.update_product("mesa", page).await.is_ok());
        assert!(matches!(admin.update_product("nada", ProductChange::default()).await, Err(AdminError::NoProduct(_))));
        assert!(matches!(admin.user("nadie").await, Err(AdminError::NoUser(_))));
        let secrets = SecretBox::new([1; 32]);
        assert!(matches!(
            admin.set_department_webhook(&secrets, 9999, Some("tok")).await,
            Err(AdminError::NoDepartment(9999))
        ));
        assert!(admin.set_department_webhook(&secrets, department.id, Some(" tok ")).await.unwrap());
        assert!(!admin.set_department_webhook(&secrets, department.id, Some("  ")).await.unwrap(), "removed");

        let bad_zone = admin.save_calendar("ventas", "Marte/Olympus", "lun-vie 08:00-17:00").await;
        assert!(matches!(bad_zone, Err(AdminError::Sla { what: SlaPart::Zone, .. })));
        let bad_hours = admin.save_calendar("ventas", "America/Costa_Rica", "lun 17:00-08:00").await;
        assert!(matches!(bad_hours, Err(AdminError::Sla { what: SlaPart::Hours, .. })));
        assert!(admin.sla_setup().await.unwrap().calendars.iter().all(|c| c.name != "ventas"), "nothing written");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        match admin.set_holiday("nada", day, true).await {
            Err(e @ AdminError::NoCalendar { .. }) => {
                assert!(e.to_string().starts_with("no calendar \"nada\"; known:"))
            }
            other => panic!("{other:?}"),
        }
        let saved = admin.save_calendar(" ventas ", "America/Costa_Rica", "lun-vie 08:00-17:00").await.unwrap();
        admin.set_holiday("ventas", day, true).await.unwrap();
        assert!(matches!(admin.assign_calendar(9999, Some("ventas")).await, Err(AdminError::NoDepartment(9999))));
        assert!(matches!(admin.assign_calendar(department.id, Some("nada")).await, Err(AdminError::NoCalendar { .. })));
        admin.assign_calendar(department.id, Some("ventas")).await.unwrap();
        let again = admin.save_calendar("ventas", "America/Costa_Rica", "lun-dom 00:00-24:00").await.unwrap();
        assert_eq!((again.id, again.holidays.len()), (saved.id, 1), "replaced by name, holidays kept");

        let policy = |department_id, first| NewSlaPolicy {
            department_id,
            priority: Priority::Urgent,
            first_response_mins: first,
            resolution_mins: 120,
            warning_pct: Some(50),
        };
        assert!(matches!(admin.save_policy(policy(Some(9999), 15)).await, Err(AdminError::NoDepartment(9999))));
        assert!(matches!(admin.save_policy(policy(None, 0)).await, Err(AdminError::Sla { what: SlaPart::Policy, .. })));
        assert!(admin.sla_setup().await.unwrap().policies.is_empty(), "nothing written");
        let p = admin.save_policy(policy(Some(department.id), 15)).await.unwrap();
        admin.remove_policy(p.id).await.unwrap();
        assert!(matches!(admin.remove_policy(p.id).await, Err(AdminError::NoPolicy(id)) if id == p.id));
    }
}
