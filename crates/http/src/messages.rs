//! The Spanish texts of successful answers, in one place (error texts live
//! with their mapping in [`crate::error`]). Wording is the documentation's;
//! changing one breaks clients that compare messages.

pub const LOGGED_IN: &str = "Usuario logueado.";
pub const FORGOT_ACCEPTED: &str =
    "Si el correo pertenece a un usuario registrado, recibirá un enlace para restablecer la contraseña.";
pub const PASSWORD_RESET: &str = "Contraseña restablecida correctamente.";

pub const SYSTEM_CREATED: &str = "Registro creado correctamente.";
pub const SYSTEM_TOKEN_ROTATED: &str = "Token actualizado correctamente.";
pub const SYSTEM_UPDATED: &str = "Registro actualizado correctamente.";
pub const LOGIN_TICKET_ISSUED: &str = "Solicitud de acceso generada.";
pub const LOGIN_TICKET_REDEEMED: &str = "Usuario Autenticado.";

/// `correo/getConfigCorreos`: the documentation answers with an empty message.
pub const MAIL_ACCOUNTS: &str = "";

pub fn users_found(n: usize) -> String {
    format!("Obtenidos {n} registros de usuarios.")
}

pub fn ticket_created(id: i64) -> String {
    format!("Se ha creado el ticket {id}")
}

/// `correo/save` for a mail held instead of opening a ticket.
pub fn mail_held(id: i64, reason: helpdesk_domain::model::HoldReason) -> String {
    let why = match reason {
        helpdesk_domain::model::HoldReason::OwnAddress => {
            "viene de una dirección propia de la mesa de ayuda y no continúa ningún ticket"
        }
    };
    format!("Correo retenido ({id}): {why}; no se creó ticket")
}

pub fn detail_added(id: i64) -> String {
    format!("Se ha agregado el detalle al ticket {id}")
}

pub fn bot_user_updated(login: &str) -> String {
    format!("Usuario {login} actualizado.")
}

pub fn bot_reply_pending(updated: &str) -> String {
    format!("{updated} La respuesta por Synology Chat está pendiente.")
}

pub const BOT_TOKEN_IN_URL: &str =
    "El token de Synology no se acepta en la URL; envíelo en el cuerpo (formulario o JSON).";

pub fn tickets_found(n: usize) -> String {
    format!("Obtenidos {n} tickets.")
}

pub fn ticket_shown(id: i64) -> String {
    format!("Ticket {id}.")
}

pub fn ticket_updated(id: i64) -> String {
    format!("Ticket {id} actualizado.")
}

pub const REPLY_QUEUED: &str = "Respuesta registrada; en cola para envío.";
pub const NOTE_STORED: &str = "Nota interna registrada.";
