//! `POST api/correo/getConfigCorreos`: mailboxes for the reading channel.

use actix_web::{HttpRequest, HttpResponse, web};
use helpdesk_domain::model::{Endpoint, MailAccountFilter, MailAccountWithPassword, Status};
use helpdesk_domain::ports::Adapters;
use serde::Serialize;

use crate::AppState;
use crate::call::{Accept, guarded, opt_int, opt_string};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::validation::{Field, Rule, field, validate};

fn rules() -> Vec<Field> {
    vec![
        field("id_cuenta_correo", vec![Rule::Integer]),
        field("user", vec![Rule::String, Rule::Max(191)]),
        field("departamento", vec![Rule::Integer]),
        field("estado", vec![Rule::String, Rule::In(&["activo", "inactivo"])]),
    ]
}

/// One mailbox, with the documented keys and types.
#[derive(Debug, Serialize)]
pub struct CuentaCorreo {
    pub id_cuenta_correo: i64,
    pub host: String,
    pub user: String,
    pub password: String,
    pub port: String,
    pub mail_boxes: Vec<String>,
    pub departamento: i64,
    pub estado: &'static str,
}

impl From<MailAccountWithPassword> for CuentaCorreo {
    fn from(a: MailAccountWithPassword) -> Self {
        let MailAccountWithPassword { account, password } = a;
        CuentaCorreo {
            id_cuenta_correo: account.id,
            host: account.host,
            user: account.user,
            password,
            port: account.port,
            mail_boxes: account.mailboxes,
            departamento: account.department_id,
            estado: account.status.as_str(),
        }
    }
}

pub async fn get_config<A: Adapters>(state: web::Data<AppState<A>>, req: HttpRequest) -> HttpResponse {
    let st = state.clone();
    guarded(&state, &req, Endpoint::MailAccounts, Accept::Json, |_consumer, bag| async move {
        validate(&bag, &rules(), &[]).map_err(ApiError::Validation)?;
        let filter = MailAccountFilter {
            id: opt_int(&bag, "id_cuenta_correo"),
            user: opt_string(&bag, "user"),
            department_id: opt_int(&bag, "departamento"),
            status: opt_string(&bag, "estado").and_then(|s| Status::parse(&s)),
        };
        let accounts = st.mail_accounts.list_with_passwords(filter).await?;
        // The documentation answers with an empty message here.
        Reply::ok(accounts.into_iter().map(CuentaCorreo::from).collect::<Vec<_>>(), "")
    })
    .await
}
