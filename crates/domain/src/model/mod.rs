//! The helpdesk's nouns. Field names are English; the documented Spanish names
//! live in the HTTP crate's DTOs and in the database columns.

mod address;
mod audit;
mod console;
mod consumer;
mod directory;
mod mail;
mod outgoing;
mod reader;
mod sla;
mod sso;
mod ticket;
mod webhook;
mod work;

pub use address::*;
pub use audit::*;
pub use console::*;
pub use consumer::*;
pub use directory::*;
pub use mail::*;
pub use outgoing::*;
pub use reader::*;
pub use sla::*;
pub use sso::*;
pub use ticket::*;
pub use webhook::*;
pub use work::*;

/// Times are stored and compared in UTC without an offset, as the documented
/// `Y-m-d H:i:s` fields are.
pub type Timestamp = chrono::NaiveDateTime;

/// `activo` / `inactivo`: the documented status of products, departments,
/// mail accounts, consumers and integrated systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[serde(rename = "activo")]
    Active,
    #[serde(rename = "inactivo")]
    Inactive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "activo",
            Status::Inactive => "inactivo",
        }
    }
    /// Accepts the documented spellings, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "activo" | "active" => Some(Status::Active),
            "inactivo" | "inactive" => Some(Status::Inactive),
            _ => None,
        }
    }
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}
