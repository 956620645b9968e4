//! HTTP tests: the real server on port 0, on a fresh database, driven by an
//! HTTP client. Every case runs on SQLite; the same cases run on MariaDB
//! when the ignored tests are run (`.ci/run` does).

mod helpers;

mod adi;
mod audit;
mod auth;
mod backup;
mod bot;
mod cli;
mod console;
mod console_browser;
mod documented;
mod errors;
mod faults;
mod health;
mod ingest;
mod mail_accounts;
mod mail_loops;
mod reader;
mod secrets;
mod security_http;
mod sla;
mod sso;
mod tickets;
mod users;
mod webhooks;
