//! Row structs, checked at compile time against both backends, and their
//! conversions to and from the domain's models.

use diesel::prelude::*;
use helpdesk_domain::RepoError;
use helpdesk_domain::model::*;

use crate::schema::*;

fn status(s: &str) -> Result<Status, RepoError> {
    Status::parse(s).ok_or_else(|| RepoError::corrupt(format!("unknown estado {s:?} in the database")))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = producto, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct ProductRow {
    pub id_producto: i64,
    pub alias_producto: String,
    pub nombre: String,
    pub estado: String,
    pub acceso: String,
    pub url_restablecer: Option<String>,
}

impl TryFrom<ProductRow> for Product {
    type Error = RepoError;
    fn try_from(r: ProductRow) -> Result<Self, RepoError> {
        let access = ProductAccess::parse(&r.acceso)
            .ok_or_else(|| RepoError::corrupt(format!("producto.acceso {:?}", r.acceso)))?;
        Ok(Product {
            id: r.id_producto,
            alias: r.alias_producto,
            name: r.nombre,
            status: status(&r.estado)?,
            access,
            reset_url: r.url_restablecer,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = departamento, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct DepartmentRow {
    pub id_departamento: i64,
    pub nombre: String,
    pub canal_synology: Option<String>,
    pub estado: String,
}

impl TryFrom<DepartmentRow> for Department {
    type Error = RepoError;
    fn try_from(r: DepartmentRow) -> Result<Self, RepoError> {
        Ok(Department {
            id: r.id_departamento,
            name: r.nombre,
            synology_channel: r.canal_synology,
            status: status(&r.estado)?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = rol, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct RoleRow {
    pub id_rol: i64,
    pub nombre: String,
}

/// Every column of `usuario` but the secrets.
#[derive(Queryable, Selectable)]
#[diesel(table_name = usuario, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct UserRow {
    pub id_usuario: i64,
    pub login: String,
    pub nombre: String,
    pub cedula: String,
    pub tipo_usuario: String,
    pub status: String,
    pub accesos: String,
    pub crm_usuario: String,
    pub correo: String,
    pub ext: String,
    pub acceso_ticket: String,
    pub fk_id_departamento: Option<i64>,
    pub fk_id_rol: Option<i64>,
    pub jefe: i32,
    pub movil: String,
    pub ultimo_acceso: Option<chrono::NaiveDateTime>,
    pub ip_address: Option<String>,
    pub accesos_sistemas: String,
    pub id_synology: Option<i64>,
    pub codigo: String,
}

impl UserRow {
    pub fn into_domain(self, role_name: Option<String>) -> Result<InternalUser, RepoError> {
        let status = UserStatus::parse(&self.status)
            .ok_or_else(|| RepoError::corrupt(format!("unknown usuario.status {:?}", self.status)))?;
        Ok(InternalUser {
            id: self.id_usuario,
            login: self.login,
            name: self.nombre,
            national_id: self.cedula,
            user_type: self.tipo_usuario,
            status,
            accesses: self.accesos,
            username: self.crm_usuario,
            email: self.correo,
            extension: self.ext,
            can_take_tickets: self.acceso_ticket.eq_ignore_ascii_case("S"),
            department_id: self.fk_id_departamento,
            role_id: self.fk_id_rol,
            role_name,
            manager: self.jefe,
            mobile: self.movil,
            last_access: self.ultimo_acceso,
            ip_address: self.ip_address,
            system_access: self.accesos_sistemas,
            synology_id: self.id_synology,
            code: self.codigo,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = usuario)]
pub struct NewUserRow {
    pub login: String,
    pub nombre: String,
    pub cedula: String,
    pub tipo_usuario: String,
    pub status: String,
    pub accesos: String,
    pub crm_usuario: String,
    pub correo: String,
    pub ext: String,
    pub acceso_ticket: String,
    pub fk_id_departamento: Option<i64>,
    pub fk_id_rol: Option<i64>,
    pub jefe: i32,
    pub movil: String,
    pub accesos_sistemas: String,
    pub id_synology: Option<i64>,
    pub codigo: String,
    pub password_hash: Option<String>,
}

impl From<NewInternalUser> for NewUserRow {
    fn from(u: NewInternalUser) -> Self {
        NewUserRow {
            crm_usuario: u.login.clone(),
            login: u.login,
            nombre: u.name,
            cedula: u.national_id,
            tipo_usuario: u.user_type,
            status: UserStatus::Active.as_str().into(),
            accesos: String::new(),
            correo: u.email,
            ext: u.extension,
            acceso_ticket: if u.can_take_tickets { "S" } else { "N" }.into(),
            fk_id_departamento: u.department_id,
            fk_id_rol: u.role_id,
            jefe: u.manager,
            movil: u.mobile,
            accesos_sistemas: u.system_access,
            id_synology: u.synology_id,
            codigo: u.code,
            password_hash: u.password_hash,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = dispositivo_usuario, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct DeviceRow {
    pub id_device: i64,
    pub fk_id_usuario: i64,
    pub nombre: String,
    pub pin_hash: String,
    pub estado: String,
}

impl TryFrom<DeviceRow> for Device {
    type Error = RepoError;
    fn try_from(r: DeviceRow) -> Result<Self, RepoError> {
        Ok(Device {
            id: r.id_device,
            user_id: r.fk_id_usuario,
            name: r.nombre,
            pin_hash: r.pin_hash,
            status: status(&r.estado)?,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = consumidor_api, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct ConsumerRow {
    pub id_consumidor: i64,
    pub nombre: String,
    pub secreto_hmac: String,
    pub estado: String,
    pub created_at: chrono::NaiveDateTime,
}

impl ConsumerRow {
    pub fn into_domain(self, grants: Vec<String>) -> Result<Consumer, RepoError> {
        Ok(Consumer {
            id: self.id_consumidor,
            name: self.nombre,
            secret_hash: self.secreto_hmac,
            status: status(&self.estado)?,
            // A grant this version does not know (written by a newer one) is ignored.
            grants: grants.iter().filter_map(|g| Endpoint::from_path(g)).collect(),
            created_at: self.created_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bitacora_log, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct AuditRow {
    pub id_bitacora_log: i64,
    pub fecha: chrono::NaiveDateTime,
    pub fk_id_consumidor: Option<i64>,
    pub consumidor: Option<String>,
    pub endpoint: String,
    pub metodo: String,
    pub ip: String,
    pub status_http: Option<i32>,
    pub duracion_us: Option<i64>,
    pub cuerpo: String,
    pub fk_id_bitacora_padre: Option<i64>,
    pub fk_id_usuario: Option<i64>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id_bitacora_log,
            at: r.fecha,
            consumer_id: r.fk_id_consumidor,
            consumer_name: r.consumidor,
            endpoint: r.endpoint,
            method: r.metodo,
            client_ip: r.ip,
            status: r.status_http.and_then(|s| u16::try_from(s).ok()),
            duration_us: r.duracion_us,
            body: r.cuerpo,
            parent_id: r.fk_id_bitacora_padre,
            user_id: r.fk_id_usuario,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cuenta_correo, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct MailAccountRow {
    pub id_cuenta_correo: i64,
    pub host: String,
    pub user: String,
    pub password_cifrado: Vec<u8>,
    pub port: String,
    pub mail_boxes: String,
    pub departamento: i64,
    pub estado: String,
    pub enviar_acuse: bool,
}

impl TryFrom<MailAccountRow> for MailAccount {
    type Error = RepoError;
    fn try_from(r: MailAccountRow) -> Result<Self, RepoError> {
        let mailboxes = serde_json::from_str(&r.mail_boxes)
            .map_err(|e| RepoError::corrupt(format!("cuenta_correo.mail_boxes is not a JSON list: {e}")))?;
        Ok(MailAccount {
            id: r.id_cuenta_correo,
            host: r.host,
            user: r.user,
            sealed_password: r.password_cifrado,
            port: r.port,
            mailboxes,
            department_id: r.departamento,
            status: status(&r.estado)?,
            send_acknowledgement: r.enviar_acuse,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sesion_usuario, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct SessionRow {
    pub id_sesion: String,
    pub fk_id_usuario: i64,
    pub fk_id_producto: Option<i64>,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: chrono::NaiveDateTime,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub familia: String,
    pub inicio_familia: chrono::NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sesion_consola, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct ConsoleSessionRow {
    pub id_hash: String,
    pub fk_id_usuario: i64,
    pub csrf: String,
    pub created_at: chrono::NaiveDateTime,
    pub ultimo_uso: chrono::NaiveDateTime,
    pub cerrada_en: Option<chrono::NaiveDateTime>,
}

impl From<ConsoleSessionRow> for ConsoleSession {
    fn from(r: ConsoleSessionRow) -> Self {
        ConsoleSession {
            id_hash: r.id_hash,
            user_id: r.fk_id_usuario,
            csrf: r.csrf,
            created_at: r.created_at,
            last_seen_at: r.ultimo_uso,
            ended_at: r.cerrada_en,
        }
    }
}

impl From<SessionRow> for UserSession {
    fn from(r: SessionRow) -> Self {
        UserSession {
            token_id: r.id_sesion,
            user_id: r.fk_id_usuario,
            product_id: r.fk_id_producto,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            family_id: r.familia,
            family_started_at: r.inicio_familia,
        }
    }
}

impl From<UserSession> for SessionRow {
    fn from(s: UserSession) -> Self {
        SessionRow {
            id_sesion: s.token_id,
            fk_id_usuario: s.user_id,
            fk_id_producto: s.product_id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            familia: s.family_id,
            inicio_familia: s.family_started_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = password_reset, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct ResetRow {
    pub id_password_reset: i64,
    pub fk_id_usuario: i64,
    pub token_hash: String,
    pub created_at: chrono::NaiveDateTime,
    pub used_at: Option<chrono::NaiveDateTime>,
}

impl From<ResetRow> for PasswordReset {
    fn from(r: ResetRow) -> Self {
        PasswordReset {
            id: r.id_password_reset,
            user_id: r.fk_id_usuario,
            token_hash: r.token_hash,
            created_at: r.created_at,
            used_at: r.used_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = intento_login, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct ThrottleRow {
    pub fallos: i32,
    pub ventana_inicio: chrono::NaiveDateTime,
    pub bloqueado_hasta: Option<chrono::NaiveDateTime>,
}

/// A throttle row with its key, read by column name (`sql::Select`).
#[derive(QueryableByName)]
#[diesel(table_name = intento_login, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct KeyedThrottleRow {
    pub clave: String,
    pub fallos: i32,
    pub ventana_inicio: chrono::NaiveDateTime,
    pub bloqueado_hasta: Option<chrono::NaiveDateTime>,
}

impl From<ThrottleRow> for ThrottleState {
    fn from(r: ThrottleRow) -> Self {
        ThrottleState { failures: r.fallos, window_started_at: r.ventana_inicio, locked_until: r.bloqueado_hasta }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sistema_integrado, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct SystemRow {
    pub id_sistema: i64,
    pub alias_sistema: String,
    pub estado: String,
    pub token_hash: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

impl TryFrom<SystemRow> for IntegratedSystem {
    type Error = RepoError;
    fn try_from(r: SystemRow) -> Result<Self, RepoError> {
        Ok(IntegratedSystem {
            id: r.id_sistema,
            alias: r.alias_sistema,
            status: status(&r.estado)?,
            token_hash: r.token_hash,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = ticket_acceso_adi, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct LoginTicketRow {
    pub id_ticket_adi: String,
    pub fk_id_usuario: i64,
    pub fk_id_sistema: i64,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: chrono::NaiveDateTime,
    pub used_at: Option<chrono::NaiveDateTime>,
}

impl From<LoginTicketRow> for LoginTicket {
    fn from(r: LoginTicketRow) -> Self {
        LoginTicket {
            ticket_id: r.id_ticket_adi,
            user_id: r.fk_id_usuario,
            system_id: r.fk_id_sistema,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
        }
    }
}

impl From<LoginTicket> for LoginTicketRow {
    fn from(t: LoginTicket) -> Self {
        LoginTicketRow {
            id_ticket_adi: t.ticket_id,
            fk_id_usuario: t.user_id,
            fk_id_sistema: t.system_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
            used_at: t.used_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ticket, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct TicketRow {
    pub id_ticket: i64,
    pub asunto: String,
    pub estado: String,
    pub fk_id_departamento: i64,
    pub fk_id_usuario_asignado: Option<i64>,
    pub solicitante: String,
    pub fk_id_cuenta_correo: Option<i64>,
    pub sistema: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
    pub closed_at: Option<chrono::NaiveDateTime>,
    pub prioridad: String,
    pub fk_id_politica_sla: Option<i64>,
    pub fk_id_calendario: Option<i64>,
    pub sla_inicio: Option<Timestamp>,
    pub sla_pausa_seg: i64,
    pub sla_pausado_desde: Option<Timestamp>,
    pub vence_primera_respuesta: Option<Timestamp>,
    pub aviso_primera_respuesta: Option<Timestamp>,
    pub primera_respuesta_en: Option<Timestamp>,
    pub vence_resolucion: Option<Timestamp>,
    pub aviso_resolucion: Option<Timestamp>,
    pub resuelto_en: Option<Timestamp>,
    pub proximo_vencimiento: Option<Timestamp>,
}

impl TicketRow {
    /// The service-level clock, when a policy covers the ticket
    /// (`fk_id_politica_sla` set; then every due time is too).
    fn clock(&self) -> Result<Option<SlaClock>, RepoError> {
        let Some(policy_id) = self.fk_id_politica_sla else { return Ok(None) };
        let missing = |column: &str| {
            RepoError::corrupt(format!("ticket {} has a service level without {column}", self.id_ticket))
        };
        Ok(Some(SlaClock {
            policy_id,
            calendar_id: self.fk_id_calendario.ok_or_else(|| missing("fk_id_calendario"))?,
            started_at: self.sla_inicio.ok_or_else(|| missing("sla_inicio"))?,
            paused_secs: self.sla_pausa_seg,
            paused_since: self.sla_pausado_desde,
            first_response_due: self.vence_primera_respuesta.ok_or_else(|| missing("vence_primera_respuesta"))?,
            first_response_warning: self.aviso_primera_respuesta.ok_or_else(|| missing("aviso_primera_respuesta"))?,
            first_response_at: self.primera_respuesta_en,
            resolution_due: self.vence_resolucion.ok_or_else(|| missing("vence_resolucion"))?,
            resolution_warning: self.aviso_resolucion.ok_or_else(|| missing("aviso_resolucion"))?,
            resolved_at: self.resuelto_en,
        }))
    }
}

impl TryFrom<TicketRow> for Ticket {
    type Error = RepoError;
    fn try_from(r: TicketRow) -> Result<Self, RepoError> {
        let sla = r.clock()?;
        Ok(Ticket {
            id: r.id_ticket,
            subject: r.asunto,
            status: TicketStatus::parse(&r.estado)
                .ok_or_else(|| RepoError::corrupt(format!("unknown ticket.estado {:?}", r.estado)))?,
            priority: Priority::parse(&r.prioridad)
                .ok_or_else(|| RepoError::corrupt(format!("unknown ticket.prioridad {:?}", r.prioridad)))?,
            department_id: r.fk_id_departamento,
            assignee_id: r.fk_id_usuario_asignado,
            requester: r.solicitante,
            mail_account_id: r.fk_id_cuenta_correo,
            system: r.sistema,
            created_at: r.created_at,
            updated_at: r.updated_at,
            closed_at: r.closed_at,
            sla,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = detalle_ticket, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct DetailRow {
    pub id_detalle_ticket: i64,
    pub fk_id_ticket: i64,
    pub clave_dedupe: String,
    pub message_id: Option<String>,
    pub remitente: String,
    pub destinatario: String,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub reply_to: Option<String>,
    pub asunto: String,
    pub cuerpo: String,
    pub html: String,
    pub fecha: chrono::NaiveDateTime,
    pub headers: String,
    pub automatico: bool,
    pub nuevo_ticket: bool,
    pub created_at: chrono::NaiveDateTime,
    pub direccion: String,
    pub fk_id_usuario_autor: Option<i64>,
}

impl TryFrom<DetailRow> for TicketDetail {
    type Error = RepoError;
    fn try_from(r: DetailRow) -> Result<Self, RepoError> {
        Ok(TicketDetail {
            id: r.id_detalle_ticket,
            ticket_id: r.fk_id_ticket,
            dedupe_key: r.clave_dedupe,
            message_id: r.message_id,
            from: r.remitente,
            to: r.destinatario,
            cc: r.cc,
            bcc: r.bcc,
            reply_to: r.reply_to,
            subject: r.asunto,
            body: r.cuerpo,
            html: r.html,
            date: r.fecha,
            headers: serde_json::from_str(&r.headers)
                .map_err(|e| RepoError::corrupt(format!("detalle_ticket.headers is not a JSON object: {e}")))?,
            automatic: r.automatico,
            opened_ticket: r.nuevo_ticket,
            direction: Direction::parse(&r.direccion)
                .ok_or_else(|| RepoError::corrupt(format!("unknown detalle_ticket.direccion {:?}", r.direccion)))?,
            author_id: r.fk_id_usuario_autor,
            created_at: r.created_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = adjunto_ticket, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct AttachmentRow {
    pub id_adjunto: i64,
    pub fk_id_detalle_ticket: i64,
    pub nombre: String,
    pub ruta: String,
    pub tipo: String,
}

impl From<AttachmentRow> for Attachment {
    fn from(r: AttachmentRow) -> Self {
        Attachment {
            id: r.id_adjunto,
            detail_id: r.fk_id_detalle_ticket,
            name: r.nombre,
            route: r.ruta,
            mime_type: r.tipo,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evento_ticket, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct EventRow {
    pub id_evento: i64,
    pub fk_id_ticket: i64,
    pub fk_id_usuario: Option<i64>,
    pub tipo: String,
    pub valor_anterior: Option<String>,
    pub valor_nuevo: Option<String>,
    pub fecha: chrono::NaiveDateTime,
}

impl TryFrom<EventRow> for TicketEvent {
    type Error = RepoError;
    fn try_from(r: EventRow) -> Result<Self, RepoError> {
        Ok(TicketEvent {
            id: r.id_evento,
            ticket_id: r.fk_id_ticket,
            actor_id: r.fk_id_usuario,
            kind: EventKind::parse(&r.tipo)
                .ok_or_else(|| RepoError::corrupt(format!("unknown evento_ticket.tipo {:?}", r.tipo)))?,
            before: r.valor_anterior,
            after: r.valor_nuevo,
            at: r.fecha,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notificacion, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct NoticeRow {
    pub id_notificacion: i64,
    pub fk_id_ticket: i64,
    pub fk_id_detalle_ticket: i64,
    pub tipo: String,
    pub destino: String,
    pub estado: String,
    pub intentos: i32,
    pub proximo_intento: chrono::NaiveDateTime,
    pub bloqueado_hasta: Option<chrono::NaiveDateTime>,
    pub ultimo_error: Option<String>,
    pub resultado: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub enviada_at: Option<chrono::NaiveDateTime>,
}

impl TryFrom<NoticeRow> for Notice {
    type Error = RepoError;
    fn try_from(r: NoticeRow) -> Result<Self, RepoError> {
        Ok(Notice {
            id: r.id_notificacion,
            ticket_id: r.fk_id_ticket,
            detail_id: r.fk_id_detalle_ticket,
            kind: NoticeKind::parse(&r.tipo)
                .ok_or_else(|| RepoError::corrupt(format!("unknown notificacion.tipo {:?}", r.tipo)))?,
            recipient: r.destino,
            status: NoticeStatus::parse(&r.estado)
                .ok_or_else(|| RepoError::corrupt(format!("unknown notificacion.estado {:?}", r.estado)))?,
            attempts: r.intentos,
            next_attempt_at: r.proximo_intento,
            leased_until: r.bloqueado_hasta,
            last_error: r.ultimo_error,
            result: r.resultado,
            created_at: r.created_at,
            sent_at: r.enviada_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = correo_cuarentena, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct QuarantineRow {
    pub id_cuarentena: i64,
    pub fk_id_cuenta_correo: i64,
    pub mailbox: String,
    pub uid_validity: i64,
    pub uid: i64,
    pub tamano: i64,
    pub motivo: String,
    pub detalle: String,
    pub ruta_original: Option<String>,
    pub intentos: i64,
    pub fk_id_ticket: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A UID or UIDVALIDITY: 32 bits unsigned on the wire, BIGINT in the tables.
pub fn uid32(v: i64) -> Result<u32, RepoError> {
    u32::try_from(v).map_err(|_| RepoError::corrupt(format!("UID {v} out of range in the database")))
}

impl TryFrom<QuarantineRow> for QuarantinedMail {
    type Error = RepoError;
    fn try_from(r: QuarantineRow) -> Result<Self, RepoError> {
        Ok(QuarantinedMail {
            id: r.id_cuarentena,
            location: MailLocation {
                account_id: r.fk_id_cuenta_correo,
                mailbox: r.mailbox,
                uid_validity: uid32(r.uid_validity)?,
                uid: uid32(r.uid)?,
            },
            size: r.tamano,
            reason: QuarantineReason::parse(&r.motivo)
                .ok_or_else(|| RepoError::corrupt(format!("unknown motivo {:?} in the database", r.motivo)))?,
            detail: r.detalle,
            raw_route: r.ruta_original,
            attempts: r.intentos,
            created_at: r.created_at,
            updated_at: r.updated_at,
            ticket_id: r.fk_id_ticket,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct WebhookRow {
    pub id_webhook: i64,
    pub url: String,
    pub eventos: String,
    pub secreto_cifrado: Vec<u8>,
    pub estado: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = RepoError;
    fn try_from(r: WebhookRow) -> Result<Self, RepoError> {
        Ok(Webhook {
            id: r.id_webhook,
            url: r.url,
            events: WebhookEventKind::parse_list(&r.eventos)
                .ok_or_else(|| RepoError::corrupt(format!("unknown webhook.eventos {:?}", r.eventos)))?,
            sealed_secret: r.secreto_cifrado,
            status: status(&r.estado)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_entrega, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct DeliveryRow {
    pub id_entrega: i64,
    pub fk_id_evento: String,
    pub fk_id_webhook: i64,
    pub estado: String,
    pub intentos: i32,
    pub proximo_intento: Timestamp,
    pub bloqueado_hasta: Option<Timestamp>,
    pub ultimo_error: Option<String>,
    pub created_at: Timestamp,
    pub enviada_at: Option<Timestamp>,
}

/// A delivery with its event's kind, ticket and body and its
/// subscription's URL and sealed secret.
pub type DeliveryJoin = (DeliveryRow, (String, i64, String), (String, Vec<u8>));

pub fn delivery(
    (r, (tipo, ticket_id, body), (url, sealed_secret)): DeliveryJoin,
) -> Result<WebhookDelivery, RepoError> {
    Ok(WebhookDelivery {
        id: r.id_entrega,
        event_id: r.fk_id_evento,
        webhook_id: r.fk_id_webhook,
        kind: WebhookEventKind::parse(&tipo)
            .ok_or_else(|| RepoError::corrupt(format!("unknown webhook_evento.tipo {tipo:?}")))?,
        ticket_id,
        body,
        url,
        sealed_secret,
        status: DeliveryStatus::parse(&r.estado)
            .ok_or_else(|| RepoError::corrupt(format!("unknown webhook_entrega.estado {:?}", r.estado)))?,
        attempts: r.intentos,
        next_attempt_at: r.proximo_intento,
        leased_until: r.bloqueado_hasta,
        last_error: r.ultimo_error,
        created_at: r.created_at,
        sent_at: r.enviada_at,
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = calendario_laboral, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct CalendarRow {
    pub id_calendario: i64,
    pub nombre: String,
    pub zona_horaria: String,
    pub horario: String,
}

impl CalendarRow {
    /// The calendar with its holidays; a zone or hours that do not parse
    /// (written by hand, or by a newer version) are `Unexpected`.
    pub fn into_domain(
        self,
        holidays: std::collections::BTreeSet<chrono::NaiveDate>,
    ) -> Result<BusinessCalendar, RepoError> {
        let bad = |e: SlaSetupError| RepoError::corrupt(format!("calendario_laboral {}: {e}", self.id_calendario));
        Ok(BusinessCalendar {
            id: self.id_calendario,
            zone: parse_zone(&self.zona_horaria).map_err(bad)?,
            hours: WeeklyHours::parse(&self.horario).map_err(bad)?,
            name: self.nombre,
            holidays,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = politica_sla, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct PolicyRow {
    pub id_politica: i64,
    pub fk_id_departamento: Option<i64>,
    pub prioridad: String,
    pub primera_respuesta_min: i32,
    pub resolucion_min: i32,
    pub aviso_pct: Option<i32>,
}

impl TryFrom<PolicyRow> for SlaPolicy {
    type Error = RepoError;
    fn try_from(r: PolicyRow) -> Result<Self, RepoError> {
        Ok(SlaPolicy {
            id: r.id_politica,
            department_id: r.fk_id_departamento,
            priority: Priority::parse(&r.prioridad)
                .ok_or_else(|| RepoError::corrupt(format!("unknown politica_sla.prioridad {:?}", r.prioridad)))?,
            first_response_mins: r.primera_respuesta_min.into(),
            resolution_mins: r.resolucion_min.into(),
            warning_pct: r.aviso_pct.map(i64::from),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = correo_retenido, check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))]
pub struct HeldRow {
    pub id_correo_retenido: i64,
    pub clave_dedupe: String,
    pub motivo: String,
    pub correo: String,
    pub created_at: Timestamp,
    pub fk_id_ticket: Option<i64>,
    pub liberado_en: Option<Timestamp>,
}

impl TryFrom<HeldRow> for HeldMail {
    type Error = RepoError;
    fn try_from(r: HeldRow) -> Result<Self, RepoError> {
        Ok(HeldMail {
            id: r.id_correo_retenido,
            dedupe_key: r.clave_dedupe,
            reason: HoldReason::parse(&r.motivo)
                .ok_or_else(|| RepoError::corrupt(format!("unknown motivo {:?} in the database", r.motivo)))?,
            mail: serde_json::from_str(&r.correo).map_err(RepoError::unexpected)?,
            created_at: r.created_at,
            ticket_id: r.fk_id_ticket,
            released_at: r.liberado_en,
        })
    }
}
