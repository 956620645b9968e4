//! Mailbox accounts of the mail-reading channel.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::dialect::Dialect;
use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::{Db, db_run, db_transaction};

impl MailAccountRepository for Db {
    async fn create_mail_account(&self, new: NewMailAccount) -> RepoResult<MailAccount> {
        let boxes = serde_json::to_string(&new.mailboxes).map_err(RepoError::unexpected)?;
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(cuenta_correo::table)
                .values((
                    cuenta_correo::host.eq(&new.host),
                    cuenta_correo::user.eq(&new.user),
                    cuenta_correo::password_cifrado.eq(&new.sealed_password),
                    cuenta_correo::port.eq(&new.port),
                    cuenta_correo::mail_boxes.eq(&boxes),
                    cuenta_correo::departamento.eq(new.department_id),
                    cuenta_correo::estado.eq(new.status.as_str()),
                    cuenta_correo::enviar_acuse.eq(new.send_acknowledgement),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(MailAccount {
            id,
            host: new.host,
            user: new.user,
            sealed_password: new.sealed_password,
            port: new.port,
            mailboxes: new.mailboxes,
            department_id: new.department_id,
            status: new.status,
            send_acknowledgement: new.send_acknowledgement,
        })
    }

    async fn find_mail_accounts(&self, f: MailAccountFilter) -> RepoResult<Vec<MailAccount>> {
        let rows: Vec<MailAccountRow> = db_run!(self, |conn| {
            let mut q = cuenta_correo::table
                .select(MailAccountRow::as_select())
                .order(cuenta_correo::id_cuenta_correo)
                .into_boxed();
            if let Some(id) = f.id {
                q = q.filter(cuenta_correo::id_cuenta_correo.eq(id));
            }
            if let Some(user) = &f.user {
                q = q.filter(cuenta_correo::user.eq(user));
            }
            if let Some(dep) = f.department_id {
                q = q.filter(cuenta_correo::departamento.eq(dep));
            }
            if let Some(status) = f.status {
                q = q.filter(cuenta_correo::estado.eq(status.as_str()));
            }
            q.load(conn).await.or_repo()
        })?;
        rows.into_iter().map(MailAccount::try_from).collect()
    }
}
