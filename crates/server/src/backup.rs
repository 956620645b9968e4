//! `helpdesk-server backup --to DIR` and `restore --from DIR`.
//!
//! A backup is a folder: the database's consistent copy (`helpdesk.db`, or
//! `helpdesk.sql` on MySQL/MariaDB), the attachments' storage (`storage/`),
//! the bitácora spool (`spool/`) and `manifest.json` (the schema version, row
//! counts, every file's size and SHA-256, the time). Order matters: the
//! database is copied first, then the files, so every attachment a copied
//! ticket names is in the copy (the reader writes a file before its row, and
//! files are never changed). The spool is copied last: records spooled while
//! the database was unavailable and still waiting then are kept; a restore
//! offers them to the database again, which drops any it already holds.
//!
//! A restore checks everything before it touches anything: the manifest's
//! checksums, `PRAGMA integrity_check` on the copy, a schema not newer than
//! this build's. It refuses while a server, reader or admin command uses
//! the target, sets the target's current files aside (renamed, never
//! deleted), puts the backup in place and migrates it forward.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use helpdesk_db::backup::{self, BackupError as StoreError, StoreFacts};
use helpdesk_db::{Backend, DbUrl, latest_migration};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Config;
use crate::startup::open_db;

const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;
const SQLITE_COPY: &str = "helpdesk.db";
const MYSQL_DUMP: &str = "helpdesk.sql";
const STORAGE: &str = "storage";
const SPOOL: &str = "spool";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists and is not empty: a backup goes to a new folder")]
    NotEmpty(PathBuf),
    #[error(
        "the configured MySQL database holds {0} tables: restore into an empty database (CREATE DATABASE, then \
         point database.url at it), or drop its tables yourself; a restore never overwrites data"
    )]
    NotEmptyDatabase(i64),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        cause: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the database")]
    Open(#[source] crate::StartError),
    #[error(transparent)]
    InUse(#[from] backup::InUse),
    #[error("{path}: not a backup of this program ({why})")]
    Manifest { path: PathBuf, why: String },
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup is of a {found} database and the configuration names a {configured} one")]
    Backend { found: String, configured: String },
    #[error(
        "the backup's schema ({found}) is newer than this build's ({known}): restore it with a newer helpdesk-server"
    )]
    Newer { found: String, known: String },
    #[error("the restored database does not hold what the manifest counted: {0}")]
    Counts(String),
    #[error("migrating the restored database")]
    Migrate(#[source] helpdesk_db::MigrateError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |cause| BackupError::Io { what, cause }
}

/// What a backup folder holds, written last (a folder without it is not a
/// finished backup).
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub program_version: String,
    /// "sqlite" or "mysql".
    pub backend: String,
    pub schema_version: String,
    /// Rows of the main tables. Exact on SQLite (read from the copy); on
    /// MySQL read from a snapshot taken just before the dump's, so the dump
    /// holds at least these.
    pub counts: BTreeMap<String, i64>,
    pub counts_exact: bool,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::Mysql => "mysql",
    }
}

/// Takes a backup into `to` (created; it must not exist or be empty)
/// while servers keep running.
pub async fn backup(config: &Config, to: &Path) -> Result<Manifest, BackupError> {
    if to.exists() && std::fs::read_dir(to).map_err(io(format!("cannot read {}", to.display())))?.next().is_some() {
        return Err(BackupError::NotEmpty(to.into()));
    }
    let created = !to.exists();
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    let taken = take(config, to).await;
    if taken.is_err() {
        // An unfinished backup is no backup: what this run wrote goes (the
        // folder too when it made it), so that the same command can run again.
        let _ = if created { std::fs::remove_dir_all(to) } else { empty_dir(to) };
    }
    taken
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
    }
    Ok(())
}

async fn take(config: &Config, to: &Path) -> Result<Manifest, BackupError> {
    let db = open_db(config).map_err(BackupError::Open)?;
    let backend = db.backend();
    let copy = to.join(match backend {
        Backend::Sqlite => SQLITE_COPY,
        Backend::Mysql => MYSQL_DUMP,
    });
    let StoreFacts { schema_version, counts } = db.snapshot_into(&copy).await?;
    drop(db);
    let reader = &config.settings.reader;
    copy_tree(&reader.storage_dir, &to.join(STORAGE))?;
    copy_tree(&config.settings.audit.spool_dir, &to.join(SPOOL))?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now(),
        program_version: env!("CARGO_PKG_VERSION").into(),
        backend: backend_name(backend).into(),
        schema_version,
        counts,
        counts_exact: backend == Backend::Sqlite,
        files: list_files(to)?,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    write_durably(&to.join(MANIFEST), &text)?;
    Ok(manifest)
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// The target's former files, renamed.
    pub set_aside: Vec<PathBuf>,
    /// Migrations applied after the restore.
    pub migrated: Vec<String>,
    pub facts: StoreFacts,
}

/// Restores the backup in `from` over the configured database, storage
/// and spool.
pub async fn restore(config: &Config, from: &Path) -> Result<Restored, BackupError> {
    let manifest = read_manifest(from)?;
    verify_files(from, &manifest)?;
    let backend = config.db_url.backend();
    if manifest.backend != backend_name(backend) {
        return Err(BackupError::Backend { found: manifest.backend.clone(), configured: backend_name(backend).into() });
    }
    let known = latest_migration(backend);
    if manifest.schema_version > known {
        return Err(BackupError::Newer { found: manifest.schema_version.clone(), known });
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let aside = |p: &Path| {
        let mut name = p.as_os_str().to_owned();
        name.push(format!(".antes-de-restaurar-{stamp}"));
        PathBuf::from(name)
    };
    let mut set_aside = Vec::new();
    match &config.db_url {
        DbUrl::Sqlite(_) => {
            let target = config.db_url.sqlite_file().ok_or(StoreError::Memory)?.to_path_buf();
            let exclusive = backup::take_exclusive_use(&target)?;
            // Checked where it will live, before anything is replaced.
            let incoming = sibling(&target, ".restaurando");
            copy_file(&from.join(SQLITE_COPY), &incoming)?;
            let facts = {
                let incoming = incoming.clone();
                tokio::task::spawn_blocking(move || backup::check_sqlite_file(&incoming))
                    .await
                    .map_err(|e| BackupError::Damaged(e.to_string()))?
            };
            let facts = match facts {
                Ok(f) => f,
                Err(e) => {
                    let _ = std::fs::remove_file(&incoming);
                    return Err(e.into());
                }
            };
            if facts.counts != manifest.counts || facts.schema_version != manifest.schema_version {
                let _ = std::fs::remove_file(&incoming);
                return Err(BackupError::Damaged(format!(
                    "the copy holds {:?} at {}, the manifest says {:?} at {}",
                    facts.counts, facts.schema_version, manifest.counts, manifest.schema_version
                )));
            }
            for suffix in ["", "-wal", "-shm"] {
                let current = sibling(&target, suffix);
                if current.exists() {
                    let away = sibling(&aside(&target), suffix);
                    std::fs::rename(&current, &away).map_err(io(format!("cannot set {} aside", current.display())))?;
                    set_aside.push(away);
                }
            }
            std::fs::rename(&incoming, &target).map_err(io(format!("cannot put {} in place", target.display())))?;
            sync_dir(&target);
            drop(exclusive);
        }
        DbUrl::Mysql(urls) => {
            let users = backup::mysql_users(&urls[0]).await?;
            if users > 0 {
                return Err(backup::InUse(format!(
                    "{users} other connection(s) use the configured database (a helpdesk-server?): stop them first"
                ))
                .into());
            }
            // The dump would drop its tables: a restore never overwrites data.
            let tables = backup::mysql_tables(&urls[0]).await?;
            if tables > 0 {
                return Err(BackupError::NotEmptyDatabase(tables));
            }
            let (url, dump) = (urls[0].clone(), from.join(MYSQL_DUMP));
            tokio::task::spawn_blocking(move || backup::mysql_load(&url, &dump))
                .await
                .map_err(|e| BackupError::Damaged(e.to_string()))??;
        }
    }
    for (dir, part) in [(&config.settings.reader.storage_dir, STORAGE), (&config.settings.audit.spool_dir, SPOOL)] {
        if dir.exists()
            && std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?.next().is_some()
        {
            let away = aside(dir);
            std::fs::rename(dir, &away).map_err(io(format!("cannot set {} aside", dir.display())))?;
            set_aside.push(away);
        }
        copy_tree(&from.join(part), dir)?;
    }
    let db = open_db(config).map_err(BackupError::Open)?;
    let migrated = db.migrate().await.map_err(BackupError::Migrate)?;
    let facts = db.facts().await?;
    let short: Vec<String> = manifest
        .counts
        .iter()
        .filter(|(table, n)| facts.counts.get(*table).is_none_or(|found| found < n))
        .map(|(table, n)| format!("{table}: {} of {n}", facts.counts.get(table).copied().unwrap_or(0)))
        .collect();
    if !short.is_empty() {
        return Err(BackupError::Counts(short.join(", ")));
    }
    Ok(Restored { manifest, set_aside, migrated, facts })
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_manifest(from: &Path) -> Result<Manifest, BackupError> {
    let path = from.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| BackupError::Manifest { path: path.clone(), why: e.to_string() })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| BackupError::Manifest { path: path.clone(), why: e.to_string() })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Manifest {
            path,
            why: format!("format {} (this build reads {FORMAT})", manifest.format),
        });
    }
    Ok(manifest)
}

/// Every file the manifest lists is there with its size and checksum, and
/// no file is there that it does not list.
fn verify_files(from: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let found = list_files(from)?;
    let listed: BTreeMap<&str, &FileEntry> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut problems = Vec::new();
    for f in &found {
        match listed.get(f.path.as_str()) {
            None => problems.push(format!("{} is not in the manifest", f.path)),
            Some(l) if *l != f => problems.push(format!("{} does not match its checksum", f.path)),
            Some(_) => {}
        }
    }
    let present: std::collections::BTreeSet<&str> = found.iter().map(|f| f.path.as_str()).collect();
    problems.extend(
        manifest.files.iter().filter(|f| !present.contains(f.path.as_str())).map(|f| format!("{} is missing", f.path)),
    );
    if problems.is_empty() { Ok(()) } else { Err(BackupError::Damaged(problems.join("; "))) }
}

/// Every regular file under `root` but the manifest, with its checksum.
fn list_files(root: &Path) -> Result<Vec<FileEntry>, BackupError> {
    let mut out = Vec::new();
    for rel in files_under(root)? {
        let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        if name != MANIFEST {
            let (bytes, sha256) = checksum(&root.join(&rel))?;
            out.push(FileEntry { path: name, bytes, sha256 });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The regular files under `root` (none when it does not exist), relative
/// to it; links and other kinds of file are left out.
fn files_under(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let dir = root.join(&rel_dir);
        for entry in std::fs::read_dir(&dir).map_err(io(format!("cannot read {}", dir.display())))? {
            let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
            let rel = rel_dir.join(entry.file_name());
            let kind = entry.file_type().map_err(io(format!("cannot read {}", root.join(&rel).display())))?;
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file() {
                out.push(rel);
            }
        }
    }
    Ok(out)
}

fn checksum(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Copies the regular files under `from` (if it exists) to `to`, fsync'd.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(to).map_err(io(format!("cannot create {}", to.display())))?;
    for rel in files_under(from)? {
        let dest = to.join(&rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        }
        copy_file(&from.join(&rel), &dest)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::copy(from, to).map_err(io(format!("cannot copy {} to {}", from.display(), to.display())))?;
    std::fs::File::open(to).and_then(|f| f.sync_all()).map_err(io(format!("cannot flush {}", to.display())))
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let tmp = sibling(path, ".tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(format!("cannot write {}", tmp.display())))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot write {}", path.display())))?;
    sync_dir(path);
    Ok(())
}

/// Makes a rename in `path`'s directory durable (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
}
