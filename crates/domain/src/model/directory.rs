//! Products, departments, roles and internal users (operators).

use super::{Status, Timestamp};

/// A product (`producto`): SSO logins name the product they log into by its
/// `alias_producto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub alias: String,
    pub name: String,
    pub status: Status,
    /// Who may sign in to it (`acceso`).
    pub access: ProductAccess,
    /// The page its password-reset e-mail links to (`url_restablecer`);
    /// `None`: the configured default.
    pub reset_url: Option<String>,
}

/// Who may sign in to a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductAccess {
    /// Every active user (`todos`).
    All,
    /// Only the users granted it (`asignado`, table `acceso_producto`).
    Granted,
}

impl ProductAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductAccess::All => "todos",
            ProductAccess::Granted => "asignado",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "todos" => Some(ProductAccess::All),
            "asignado" => Some(ProductAccess::Granted),
            _ => None,
        }
    }
}

/// What an administrator changes on a product (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChange {
    pub status: Option<Status>,
    pub access: Option<ProductAccess>,
    /// `Some(None)` removes the product's own reset page.
    pub reset_url: Option<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct NewProduct {
    pub alias: String,
    pub name: String,
}

/// A department (`departamento`): tickets are routed to one, and its
/// operators take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: i64,
    pub name: String,
    /// Name of the department's Synology Chat channel, for messages.
    pub synology_channel: Option<String>,
    pub status: Status,
}

#[derive(Debug, Clone)]
pub struct NewDepartment {
    pub name: String,
    pub synology_channel: Option<String>,
}

/// A role (`rol`) of internal users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
}

/// `ACTIVO` / `INACTIVO`: the documented status of an internal user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    Inactive,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVO",
            UserStatus::Inactive => "INACTIVO",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ACTIVO" | "ACTIVE" => Some(UserStatus::Active),
            "INACTIVO" | "INACTIVE" => Some(UserStatus::Inactive),
            _ => None,
        }
    }
}

/// An internal user (`usuario`): an operator of the helpdesk, or any employee
/// that logs in through the SSO. Every field of the documented
/// `UsuarioInterno/get` answer is here; secrets (password and PIN hashes) are
/// deliberately not, so they cannot leak through this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalUser {
    pub id: i64,
    pub login: String,
    pub name: String,
    /// `cedula`: national identity number.
    pub national_id: String,
    /// `tipo_usuario`, for example `operador`.
    pub user_type: String,
    pub status: UserStatus,
    /// `accesos`: free-form access list of the original system.
    pub accesses: String,
    /// `usuario`: the user name shown in the CRM (usually the login).
    pub username: String,
    pub email: String,
    /// `ext`: phone extension.
    pub extension: String,
    /// `acceso_ticket`: whether tickets may be assigned to this operator.
    pub can_take_tickets: bool,
    pub department_id: Option<i64>,
    pub role_id: Option<i64>,
    pub role_name: Option<String>,
    /// `jefe`: 1 when the user leads the department.
    pub manager: i32,
    /// `movil`: mobile phone, also the SSO answer's `phone`.
    pub mobile: String,
    pub last_access: Option<Timestamp>,
    pub ip_address: Option<String>,
    /// `accesos_sistemas`: comma-separated aliases of the integrated systems
    /// (ADI) this user may enter.
    pub system_access: String,
    /// `id_synology`: the user's id in Synology Chat, for bot messages.
    pub synology_id: Option<i64>,
    /// `code` in the SSO answer.
    pub code: String,
}

impl InternalUser {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }

    /// Whether `system` is listed in `accesos_sistemas` (case-insensitive,
    /// comma separated, blanks ignored).
    pub fn may_enter_system(&self, system: &str) -> bool {
        let wanted = system.trim();
        !wanted.is_empty() && self.system_access.split(',').any(|s| s.trim().eq_ignore_ascii_case(wanted))
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewInternalUser {
    pub login: String,
    pub name: String,
    pub email: String,
    pub national_id: String,
    pub user_type: String,
    pub department_id: Option<i64>,
    pub role_id: Option<i64>,
    pub extension: String,
    pub mobile: String,
    pub can_take_tickets: bool,
    pub manager: i32,
    pub system_access: String,
    pub synology_id: Option<i64>,
    pub code: String,
    /// Argon2id PHC string, or `None` for a user that cannot log in by password.
    pub password_hash: Option<String>,
}

/// Filter of `UsuarioInterno/get`: every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    /// Matches the login (`login`) or the CRM user name (`usuario`).
    pub login: Option<String>,
    pub email: Option<String>,
    pub department_id: Option<i64>,
}

/// A device on which a user may log in with a PIN (`dispositivo_usuario`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// Argon2id PHC string of the PIN; the PIN is bound to this device.
    pub pin_hash: String,
    pub status: Status,
}

#[derive(Debug, Clone)]
pub struct NewDevice {
    pub user_id: i64,
    pub name: String,
    pub pin_hash: String,
}
