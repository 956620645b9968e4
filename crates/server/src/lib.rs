//! The helpdesk API server: configuration, start-up (migrations, seed,
//! wiring), and the admin commands. `main.rs` only parses the command line.

pub mod admin;
pub mod allocator;
pub mod backup;
pub mod hashing;
pub mod reader;
pub mod seed;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod wiring;
pub mod worker;

pub use settings::Settings;
pub use settings::{Config, Keys};
pub use startup::{Application, Production, StartError};
pub use wiring::{Parts, With};
