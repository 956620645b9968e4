//! Products, departments, roles, users and devices.

use diesel::OptionalExtension;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;
use helpdesk_domain::ports::*;

use crate::dialect::Dialect;
use crate::error::OrRepo;
use crate::models::*;
use crate::schema::*;
use crate::sql::{Statement, Value};
use crate::{Db, db_run, db_transaction};

impl ProductRepository for Db {
    async fn create_product(&self, new: NewProduct) -> RepoResult<Product> {
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(producto::table)
                .values((
                    producto::alias_producto.eq(&new.alias),
                    producto::nombre.eq(&new.name),
                    producto::estado.eq(Status::Active.as_str()),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(Product {
            id,
            alias: new.alias,
            name: new.name,
            status: Status::Active,
            access: ProductAccess::All,
            reset_url: None,
        })
    }

    async fn find_product_by_alias(&self, alias: &str) -> RepoResult<Option<Product>> {
        let row: Option<ProductRow> = db_run!(self, |conn| producto::table
            .filter(producto::alias_producto.eq(alias))
            .select(ProductRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Product::try_from).transpose()
    }

    async fn find_product(&self, id: i64) -> RepoResult<Option<Product>> {
        let row: Option<ProductRow> = db_run!(self, |conn| producto::table
            .find(id)
            .select(ProductRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Product::try_from).transpose()
    }

    async fn list_products(&self) -> RepoResult<Vec<Product>> {
        let rows: Vec<ProductRow> = db_run!(self, |conn| producto::table
            .order(producto::id_producto)
            .select(ProductRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(Product::try_from).collect()
    }

    async fn update_product(&self, alias: &str, change: ProductChange) -> RepoResult<Product> {
        let row: ProductRow = db_transaction!(self, |conn| {
            let Some(mut row): Option<ProductRow> = producto::table
                .filter(producto::alias_producto.eq(alias))
                .select(ProductRow::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Err(RepoError::NotFound.into());
            };
            if let Some(status) = change.status {
                row.estado = status.as_str().to_string();
            }
            if let Some(access) = change.access {
                row.acceso = access.as_str().to_string();
            }
            if let Some(url) = &change.reset_url {
                row.url_restablecer = url.clone();
            }
            diesel::update(producto::table.find(row.id_producto))
                .set((
                    producto::estado.eq(&row.estado),
                    producto::acceso.eq(&row.acceso),
                    producto::url_restablecer.eq(&row.url_restablecer),
                ))
                .execute(conn)
                .await?;
            Ok(row)
        })?;
        Product::try_from(row)
    }

    async fn set_product_grant(&self, user_id: i64, product_id: i64, granted: bool) -> RepoResult<()> {
        db_run!(self, |conn| {
            if granted {
                let sql = format!(
                    "{} INTO acceso_producto (fk_id_usuario, fk_id_producto) VALUES (?, ?)",
                    conn.insert_ignore()
                );
                Statement::new(sql, vec![Value::BigInt(user_id), Value::BigInt(product_id)])
                    .execute(conn)
                    .await
                    .or_repo()?;
            } else {
                diesel::delete(acceso_producto::table.find((user_id, product_id))).execute(conn).await.or_repo()?;
            }
            Ok(())
        })?;
        // INSERT IGNORE also ignores a missing reference on MySQL: check.
        if granted && !self.has_product_grant(user_id, product_id).await? {
            return Err(RepoError::MissingReference("usuario or producto".into()));
        }
        Ok(())
    }

    async fn has_product_grant(&self, user_id: i64, product_id: i64) -> RepoResult<bool> {
        let n: i64 = db_run!(self, |conn| acceso_producto::table
            .find((user_id, product_id))
            .count()
            .get_result(conn)
            .await
            .or_repo())?;
        Ok(n > 0)
    }
}

impl DepartmentRepository for Db {
    async fn create_department(&self, new: NewDepartment) -> RepoResult<Department> {
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(departamento::table)
                .values((
                    departamento::nombre.eq(&new.name),
                    departamento::canal_synology.eq(&new.synology_channel),
                    departamento::estado.eq(Status::Active.as_str()),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(Department { id, name: new.name, synology_channel: new.synology_channel, status: Status::Active })
    }

    async fn find_department(&self, id: i64) -> RepoResult<Option<Department>> {
        let row: Option<DepartmentRow> = db_run!(self, |conn| departamento::table
            .find(id)
            .select(DepartmentRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Department::try_from).transpose()
    }

    async fn list_departments(&self) -> RepoResult<Vec<Department>> {
        let rows: Vec<DepartmentRow> = db_run!(self, |conn| departamento::table
            .order(departamento::id_departamento)
            .select(DepartmentRow::as_select())
            .load(conn)
            .await
            .or_repo())?;
        rows.into_iter().map(Department::try_from).collect()
    }

    async fn set_department_webhook(&self, department_id: i64, sealed_token: Option<Vec<u8>>) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(departamento::table.find(department_id))
            .set(departamento::synology_webhook_cifrado.eq(&sealed_token))
            .execute(conn)
            .await
            .or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn department_webhook(&self, department_id: i64) -> RepoResult<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> = db_run!(self, |conn| departamento::table
            .find(department_id)
            .select(departamento::synology_webhook_cifrado)
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        Ok(row.flatten())
    }

    async fn ensure_role(&self, name: &str) -> RepoResult<Role> {
        let row: RoleRow = db_transaction!(self, |conn| {
            let found =
                rol::table.filter(rol::nombre.eq(name)).select(RoleRow::as_select()).first(conn).await.optional()?;
            match found {
                Some(r) => Ok(r),
                None => {
                    diesel::insert_into(rol::table).values(rol::nombre.eq(name)).execute(conn).await?;
                    Ok(RoleRow { id_rol: conn.last_insert_id().await?, nombre: name.to_string() })
                }
            }
        })?;
        Ok(Role { id: row.id_rol, name: row.nombre })
    }
}

type UserWithRole = (UserRow, Option<String>);

fn users_with_roles(rows: Vec<UserWithRole>) -> RepoResult<Vec<InternalUser>> {
    rows.into_iter().map(|(u, role)| u.into_domain(role)).collect()
}

impl UserRepository for Db {
    async fn create_user(&self, new: NewInternalUser) -> RepoResult<InternalUser> {
        let row = NewUserRow::from(new);
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(usuario::table).values(&row).execute(conn).await?;
            Ok(conn.last_insert_id().await?)
        })?;
        self.find_user(id).await?.ok_or_else(|| RepoError::corrupt("inserted user vanished"))
    }

    async fn find_user(&self, id: i64) -> RepoResult<Option<InternalUser>> {
        let rows: Vec<UserWithRole> = db_run!(self, |conn| usuario::table
            .left_join(rol::table)
            .filter(usuario::id_usuario.eq(id))
            .select((UserRow::as_select(), rol::nombre.nullable()))
            .load(conn)
            .await
            .or_repo())?;
        Ok(users_with_roles(rows)?.pop())
    }

    async fn find_users(&self, f: UserFilter) -> RepoResult<Vec<InternalUser>> {
        if f == UserFilter::default() {
            return Ok(Vec::new());
        }
        let rows: Vec<UserWithRole> = db_run!(self, |conn| {
            let mut q = usuario::table
                .left_join(rol::table)
                .select((UserRow::as_select(), rol::nombre.nullable()))
                .order(usuario::id_usuario)
                .into_boxed();
            if let Some(login) = &f.login {
                q = q.filter(usuario::login.eq(login).or(usuario::crm_usuario.eq(login)));
            }
            if let Some(email) = &f.email {
                q = q.filter(usuario::correo.eq(email));
            }
            if let Some(dep) = f.department_id {
                q = q.filter(usuario::fk_id_departamento.eq(dep));
            }
            q.load(conn).await.or_repo()
        })?;
        users_with_roles(rows)
    }

    async fn find_user_credentials(&self, key: &str) -> RepoResult<Option<(InternalUser, Option<String>)>> {
        let rows: Vec<(UserRow, Option<String>, Option<String>)> = db_run!(self, |conn| usuario::table
            .left_join(rol::table)
            .filter(usuario::login.eq(key).or(usuario::correo.eq(key)))
            .select((UserRow::as_select(), rol::nombre.nullable(), usuario::password_hash))
            .order(usuario::id_usuario)
            .load(conn)
            .await
            .or_repo())?;
        // A login that equals someone else's e-mail: the login wins.
        let mut rows = rows;
        rows.sort_by_key(|(u, _, _)| !u.login.eq_ignore_ascii_case(key));
        match rows.into_iter().next() {
            Some((u, role, hash)) => Ok(Some((u.into_domain(role)?, hash))),
            None => Ok(None),
        }
    }

    async fn set_password_hash(&self, user_id: i64, hash: &str) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(usuario::table.find(user_id))
            .set(usuario::password_hash.eq(hash))
            .execute(conn)
            .await
            .or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn set_user_status(&self, user_id: i64, status: UserStatus) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(usuario::table.find(user_id))
            .set(usuario::status.eq(status.as_str()))
            .execute(conn)
            .await
            .or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn set_takes_tickets(&self, user_id: i64, on: bool) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(usuario::table.find(user_id))
            .set(usuario::acceso_ticket.eq(if on { "S" } else { "N" }))
            .execute(conn)
            .await
            .or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn record_login(&self, user_id: i64, at: Timestamp, ip: &str) -> RepoResult<()> {
        let ip = login_ip(ip);
        let n = db_run!(self, |conn| record_login(user_id, at, &ip).execute(conn).await.or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn set_synology_id(&self, user_id: i64, synology_id: i64) -> RepoResult<()> {
        let n = db_run!(self, |conn| diesel::update(usuario::table.find(user_id))
            .set(usuario::id_synology.eq(synology_id))
            .execute(conn)
            .await
            .or_repo())?;
        if n == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn add_device(&self, new: NewDevice) -> RepoResult<Device> {
        let id = db_transaction!(self, |conn| {
            diesel::insert_into(dispositivo_usuario::table)
                .values((
                    dispositivo_usuario::fk_id_usuario.eq(new.user_id),
                    dispositivo_usuario::nombre.eq(&new.name),
                    dispositivo_usuario::pin_hash.eq(&new.pin_hash),
                    dispositivo_usuario::estado.eq(Status::Active.as_str()),
                ))
                .execute(conn)
                .await?;
            Ok(conn.last_insert_id().await?)
        })?;
        Ok(Device { id, user_id: new.user_id, name: new.name, pin_hash: new.pin_hash, status: Status::Active })
    }

    async fn find_device(&self, id: i64) -> RepoResult<Option<Device>> {
        let row: Option<DeviceRow> = db_run!(self, |conn| dispositivo_usuario::table
            .find(id)
            .select(DeviceRow::as_select())
            .first(conn)
            .await
            .optional()
            .or_repo())?;
        row.map(Device::try_from).transpose()
    }
}

/// The longest a ping may take.
const PING_WITHIN: std::time::Duration = std::time::Duration::from_millis(800);

impl StoreHealth for Db {
    /// Bounded by [`PING_WITHIN`] as a whole, whatever the pool's timeouts:
    /// readiness probes must get an answer.
    async fn ping(&self) -> RepoResult<()> {
        let ping = async {
            db_run!(self, |conn| Statement::new("SELECT 1", vec![]).execute(conn).await.map(|_| ()).or_repo())
        };
        tokio::time::timeout(PING_WITHIN, ping).await.unwrap_or_else(|_| {
            self.link.failed();
            Err(RepoError::Unavailable(format!("no answer to a ping within {} ms", PING_WITHIN.as_millis())))
        })
    }

    /// A rolled-back `UPDATE` of `sonda_escritura` (in a transaction like
    /// any writer's: on SQLite it waits for the one writer), and on SQLite
    /// the room left under `PRAGMA max_page_count` and on the file's disk.
    /// Bounded by [`PING_WITHIN`] twice over.
    async fn probe_write(&self, room: u64) -> RepoResult<()> {
        let probe = async {
            if let Some(file) = self.sqlite_file() {
                self.sqlite_room(file, room).await?;
            }
            let written = db_transaction!(self, |conn| {
                let n = Statement::new("UPDATE sonda_escritura SET veces = veces + 1 WHERE id = 1", vec![])
                    .execute(conn)
                    .await?;
                if n != 1 {
                    return Err(RepoError::corrupt("sonda_escritura has lost its row").into());
                }
                // Undone: the probe leaves nothing behind.
                Err(RepoError::Conflict.into())
            });
            match written {
                Err(RepoError::Conflict) => Ok(()),
                Ok(()) => Ok(()),
                Err(e) => Err(e),
            }
        };
        tokio::time::timeout(PING_WITHIN * 2, probe).await.unwrap_or_else(|_| {
            Err(RepoError::Unavailable(format!(
                "a write probe got no answer within {} ms",
                2 * PING_WITHIN.as_millis()
            )))
        })
    }

    fn pool_usage(&self) -> Option<(usize, usize)> {
        Some(self.pool_status())
    }
}

#[derive(QueryableByName)]
struct Pages {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    page_size: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    page_count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    freelist_count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    max_page_count: i64,
}

fn kib(bytes: u64) -> u64 {
    bytes / 1024
}

impl Db {
    /// `Unavailable` when less than `room` bytes are left for an SQLite
    /// database: under its page cap (free pages count) or on its disk.
    async fn sqlite_room(&self, file: &std::path::Path, room: u64) -> RepoResult<()> {
        let sql = "SELECT p.page_size AS page_size, c.page_count AS page_count, \
                   f.freelist_count AS freelist_count, m.max_page_count AS max_page_count \
                   FROM pragma_page_size() p, pragma_page_count() c, pragma_freelist_count() f, pragma_max_page_count() m";
        let pages: Pages = db_run!(self, |conn| diesel::sql_query(sql).get_result(conn).await.or_repo())?;
        let size = pages.page_size.max(0) as u64;
        let under_cap = (pages.max_page_count - pages.page_count + pages.freelist_count).max(0) as u64 * size;
        if under_cap < room {
            return Err(RepoError::Unavailable(format!(
                "the database is full: {} KiB left under its cap of {} KiB (database.sqlite_max_size_mib), {} KiB wanted",
                kib(under_cap),
                kib(pages.max_page_count.max(0) as u64 * size),
                kib(room)
            )));
        }
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let dir = dir.to_path_buf();
        let disk = tokio::task::spawn_blocking(move || fs4::available_space(&dir).map(|n| (dir, n)))
            .await
            .map_err(RepoError::unexpected)?
            .map_err(RepoError::unexpected)?;
        if disk.1 < room {
            return Err(RepoError::Unavailable(format!(
                "the disk of {} is full: {} KiB free, {} KiB wanted",
                disk.0.display(),
                kib(disk.1),
                kib(room)
            )));
        }
        Ok(())
    }
}

/// The address a login is recorded from, cut to the column's width.
pub(crate) fn login_ip(ip: &str) -> String {
    ip.chars().take(45).collect()
}

/// The statement recording a login on its user (0 rows: no such user).
pub(crate) fn record_login(user_id: i64, at: Timestamp, ip: &str) -> Statement<'_> {
    let set = "UPDATE usuario SET ultimo_acceso = ?, ip_address = ? WHERE id_usuario = ?";
    Statement::new(set, vec![Value::Timestamp(at), Value::Text(ip), Value::BigInt(user_id)])
}
