//! The `<database>.in-use` lock of an SQLite file: held shared by every
//! process that has the database open, taken exclusively by a restore.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The database is in use by another process: a restore must not replace it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InUse(pub String);

/// The lock file of an SQLite database: `<database>.in-use`.
pub fn in_use_lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".in-use");
    PathBuf::from(name)
}

/// The shared lock every user of an SQLite file holds while it has it open.
pub(crate) fn hold_in_use(database: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(in_use_lock_path(database))?;
    file.lock_shared()?;
    Ok(file)
}

/// Held by a restore while it replaces an SQLite database: no server, reader
/// or admin command has the file open, and none can open it meanwhile.
#[derive(Debug)]
pub struct ExclusiveUse(#[allow(dead_code)] File);

/// Takes the database for a restore, or says who holds it.
pub fn take_exclusive_use(database: &Path) -> Result<ExclusiveUse, InUse> {
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| InUse(format!("cannot create {}: {e}", dir.display())))?;
    }
    let path = in_use_lock_path(database);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| InUse(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(ExclusiveUse(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(InUse(format!(
            "{} is in use (a helpdesk-server, its mail reader or an admin command has it open): stop them first",
            database.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(InUse(format!("cannot lock {}: {e}", path.display()))),
    }
}
