//! The migrations are embedded at compile time (`embed_migrations!`): a
//! change to one must rebuild this crate, or a test runs the old SQL.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
