//! `POST api/UsuarioInterno/get`: internal users by user, e-mail or department.

use actix_web::web;
use helpdesk_domain::model::{Endpoint, InternalUser, UserFilter};
use helpdesk_domain::ports::Adapters;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::extract::{ApiRequest, Valid, de};
use crate::messages;
use crate::validation::{Field, Rule, field};

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"user": "jmora", "email": "jmora@cyberfuel.com", "departamento": 1}))]
pub struct UsersQuery {
    /// required without `email` and `departamento`
    #[serde(default, deserialize_with = "de::trimmed")]
    user: Option<String>,
    #[serde(default, deserialize_with = "de::trimmed")]
    email: Option<String>,
    #[serde(default, deserialize_with = "de::opt_int")]
    departamento: Option<i64>,
}

impl ApiRequest for UsersQuery {
    const ENDPOINT: Endpoint = Endpoint::InternalUsers;

    fn rules() -> Vec<Field> {
        vec![
            field("user", vec![Rule::RequiredWithoutAll(&["email", "departamento"]), Rule::String, Rule::Max(100)]),
            field("email", vec![Rule::RequiredWithoutAll(&["user", "departamento"]), Rule::Email, Rule::Max(191)]),
            field("departamento", vec![Rule::RequiredWithoutAll(&["user", "email"]), Rule::Integer]),
        ]
    }
}

/// One user, with the documented keys, order and types. No secret is here:
/// the domain type does not even hold the hashes.
#[derive(Debug, Serialize)]
pub struct UsuarioInterno {
    pub id_usuario: i64,
    pub login: String,
    pub nombre: String,
    pub cedula: String,
    pub tipo_usuario: String,
    pub status: &'static str,
    pub accesos: String,
    pub usuario: String,
    pub correo: String,
    pub ext: String,
    pub acceso_ticket: &'static str,
    pub fk_id_departamento: Option<i64>,
    pub fk_id_rol: Option<i64>,
    pub rol: Option<String>,
    pub jefe: i32,
    pub movil: String,
    pub ultimo_acceso: Option<String>,
    pub ip_address: Option<String>,
    pub accesos_sistemas: String,
    pub id_synology: Option<i64>,
}

impl From<InternalUser> for UsuarioInterno {
    fn from(u: InternalUser) -> Self {
        UsuarioInterno {
            id_usuario: u.id,
            login: u.login,
            nombre: u.name,
            cedula: u.national_id,
            tipo_usuario: u.user_type,
            status: u.status.as_str(),
            accesos: u.accesses,
            usuario: u.username,
            correo: u.email,
            ext: u.extension,
            acceso_ticket: if u.can_take_tickets { "S" } else { "N" },
            fk_id_departamento: u.department_id,
            fk_id_rol: u.role_id,
            rol: u.role_name,
            jefe: u.manager,
            movil: u.mobile,
            ultimo_acceso: u.last_access.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            ip_address: u.ip_address,
            accesos_sistemas: u.system_access,
            id_synology: u.synology_id,
        }
    }
}

pub async fn get<A: Adapters>(st: web::Data<AppState<A>>, q: Valid<UsersQuery, A>) -> Result<Reply, ApiError> {
    let UsersQuery { user, email, departamento } = q.input;
    let filter = UserFilter { login: user, email, department_id: departamento };
    let users = st.directory.find_users(filter).await?;
    let message = messages::users_found(users.len());
    Reply::ok(users.into_iter().map(UsuarioInterno::from).collect::<Vec<_>>(), message)
}
