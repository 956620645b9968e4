//! The bitácora's spool on local disk ([`AuditSpool`]): what the database
//! could not take, kept in order until it can.
//!
//! Three files in one directory:
//! - `bitacora.jsonl`: records appended one JSON line each, fsync'd before an
//!   append returns;
//! - `bitacora.estado`: how far the log has been written to the database,
//!   and the records numbered since (JSON, replaced atomically by
//!   write-to-temporary, fsync and rename);
//! - `bitacora.cuarentena.jsonl`: lines that could not be read back and
//!   records the database refused for good, with the reason.
//!
//! A crash while appending can leave half a line at the end of the log; on
//! opening, a newline is added so that it stands alone, and it is
//! quarantined when the drain reaches it. When the whole log has been
//! written it is truncated (before the state is saved; a state pointing past
//! the end of the log is read as "everything written").

use helpdesk_domain::Report;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use helpdesk_domain::model::SpooledAudit;
use helpdesk_domain::ports::{AuditSpool, BoxFuture, SpoolCursor, SpoolError, SpoolRead, SpoolStats};
use serde::{Deserialize, Serialize};

const LOG: &str = "bitacora.jsonl";
const STATE: &str = "bitacora.estado";
const QUARANTINE: &str = "bitacora.cuarentena.jsonl";

/// The spool in a directory, holding at most `cap` bytes.
#[derive(Clone)]
pub struct FileSpool {
    files: Arc<Mutex<Files>>,
    counts: Arc<Counts>,
    cap: u64,
}

#[derive(Default)]
struct Counts {
    records: AtomicU64,
    bytes: AtomicU64,
    quarantined: AtomicU64,
}

struct Files {
    dir: PathBuf,
    state: State,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Bytes of the log already written to the database.
    offset: u64,
    /// Records taken out of the log and numbered, not yet written.
    head: Vec<SpooledAudit>,
}

#[derive(Serialize)]
struct Quarantined<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a SpooledAudit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
}

fn io(e: std::io::Error) -> SpoolError {
    SpoolError::Io(e.to_string())
}

impl FileSpool {
    /// Opens (creating) the spool in `dir`.
    pub fn open(dir: impl Into<PathBuf>, cap: u64) -> Result<FileSpool, SpoolError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut state = match std::fs::read(dir.join(STATE)) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).unwrap_or_else(|e| {
                // Replaced atomically, so this is not a torn write: keep it
                // aside and start over (records written twice are dropped by
                // their ids; none is lost).
                tracing::error!(error = %Report(&e), "unreadable bitácora spool state; draining the whole log again");
                let _ = std::fs::rename(dir.join(STATE), dir.join(format!("{STATE}.ilegible")));
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io(e)),
        };
        let mut log = OpenOptions::new().create(true).read(true).append(true).open(dir.join(LOG)).map_err(io)?;
        let len = log.metadata().map_err(io)?.len();
        if len > 0 {
            let mut last = [0u8];
            log.seek(SeekFrom::Start(len - 1)).map_err(io)?;
            log.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                log.write_all(b"\n").and_then(|()| log.sync_data()).map_err(io)?;
            }
        }
        let len = log.metadata().map_err(io)?.len();
        state.offset = state.offset.min(len);
        let mut lines = 0u64;
        log.seek(SeekFrom::Start(state.offset)).map_err(io)?;
        for byte in BufReader::new(&mut log).bytes() {
            lines += u64::from(byte.map_err(io)? == b'\n');
        }
        let counts = Counts::default();
        counts.records.store(lines + state.head.len() as u64, Ordering::Relaxed);
        counts.bytes.store(len - state.offset + head_bytes(&state.head), Ordering::Relaxed);
        Ok(FileSpool { files: Arc::new(Mutex::new(Files { dir, state })), counts: Arc::new(counts), cap })
    }

    /// Runs `f` on the files, on the blocking pool.
    fn blocking<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&mut Files, &Counts) -> Result<T, SpoolError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, SpoolError>> {
        let (files, counts) = (self.files.clone(), self.counts.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut files = files.lock().map_err(|_| SpoolError::Io("a spool operation panicked".into()))?;
                f(&mut files, &counts)
            })
            .await
            .map_err(|e| SpoolError::Io(e.to_string()))?
        })
    }
}

fn head_bytes(head: &[SpooledAudit]) -> u64 {
    head.iter().map(|r| serde_json::to_vec(r).map(|v| v.len() as u64 + 1).unwrap_or(0)).sum()
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn save_state(&self) -> Result<(), SpoolError> {
        let tmp = self.path(&format!("{STATE}.tmp"));
        let bytes = serde_json::to_vec(&self.state).map_err(|e| SpoolError::Io(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, self.path(STATE)).map_err(io)?;
        sync_dir(&self.dir)
    }

    fn quarantine(&self, entry: &Quarantined<'_>) -> Result<(), SpoolError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| SpoolError::Io(e.to_string()))?;
        line.push(b'\n');
        let mut f = OpenOptions::new().create(true).append(true).open(self.path(QUARANTINE)).map_err(io)?;
        f.write_all(&line).and_then(|()| f.sync_data()).map_err(io)
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl AuditSpool for FileSpool {
    fn append<'a>(&'a self, records: &'a [SpooledAudit]) -> BoxFuture<'a, Result<(), SpoolError>> {
        let mut text = Vec::new();
        for r in records {
            if let Err(e) = serde_json::to_writer(&mut text, r) {
                return Box::pin(std::future::ready(Err(SpoolError::Io(e.to_string()))));
            }
            text.push(b'\n');
        }
        let (cap, n) = (self.cap, records.len() as u64);
        self.blocking(move |files, counts| {
            let size = text.len() as u64;
            if counts.bytes.load(Ordering::Relaxed) + size > cap {
                return Err(SpoolError::Full(cap));
            }
            let mut log = OpenOptions::new().create(true).append(true).open(files.path(LOG)).map_err(io)?;
            log.write_all(&text).and_then(|()| log.sync_data()).map_err(io)?;
            counts.records.fetch_add(n, Ordering::Relaxed);
            counts.bytes.fetch_add(size, Ordering::Relaxed);
            Ok(())
        })
    }

    fn peek(&self, limit: usize) -> BoxFuture<'_, Result<SpoolRead, SpoolError>> {
        self.blocking(move |files, counts| {
            let mut records = files.state.head.clone();
            let head = records.len();
            let mut log = File::open(files.path(LOG)).map_err(io)?;
            log.seek(SeekFrom::Start(files.state.offset)).map_err(io)?;
            let mut reader = BufReader::new(log);
            let mut position = files.state.offset;
            let mut line = Vec::new();
            let mut read = 0;
            while read < limit {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                match serde_json::from_slice::<SpooledAudit>(&line) {
                    Ok(r) => {
                        records.push(r);
                        position += n as u64;
                        read += 1;
                    }
                    // An unreadable line ahead of everything read: aside,
                    // and past it for good. Behind others: next time.
                    Err(e) if read == 0 => {
                        let text = String::from_utf8_lossy(&line);
                        files.quarantine(&Quarantined {
                            reason: &format!("unreadable spool line: {e}"),
                            record: None,
                            line: Some(text.trim_end()),
                        })?;
                        position += n as u64;
                        files.state.offset = position;
                        files.save_state()?;
                        counts.records.fetch_sub(1, Ordering::Relaxed);
                        counts.bytes.fetch_sub(n as u64, Ordering::Relaxed);
                        counts.quarantined.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %Report(&e), "unreadable bitácora spool line quarantined");
                    }
                    Err(_) => break,
                }
            }
            Ok(SpoolRead { records, cursor: SpoolCursor { head, position } })
        })
    }

    fn settle(&self, cursor: SpoolCursor, keep: Vec<SpooledAudit>) -> BoxFuture<'_, Result<(), SpoolError>> {
        self.blocking(move |files, counts| {
            let old_offset = files.state.offset;
            let position = cursor.position.max(old_offset);
            // Lines consumed from the log by this settle.
            let mut consumed = 0u64;
            if position > old_offset {
                let mut log = File::open(files.path(LOG)).map_err(io)?;
                log.seek(SeekFrom::Start(old_offset)).map_err(io)?;
                for byte in BufReader::new(log.take(position - old_offset)).bytes() {
                    consumed += u64::from(byte.map_err(io)? == b'\n');
                }
            }
            let taken = cursor.head.min(files.state.head.len());
            let taken_bytes = head_bytes(&files.state.head[..taken]);
            let (keep_len, keep_bytes) = (keep.len() as u64, head_bytes(&keep));
            let mut head = keep;
            head.extend(files.state.head.drain(taken..));
            let len = std::fs::metadata(files.path(LOG)).map_err(io)?.len();
            files.state = State { offset: position, head };
            if files.state.head.is_empty() && position >= len {
                // Everything written: start the log afresh.
                let log = OpenOptions::new().write(true).open(files.path(LOG)).map_err(io)?;
                log.set_len(0).and_then(|()| log.sync_all()).map_err(io)?;
                files.state.offset = 0;
            }
            files.save_state()?;
            counts.records.fetch_sub(consumed + taken as u64, Ordering::Relaxed);
            counts.records.fetch_add(keep_len, Ordering::Relaxed);
            counts.bytes.fetch_sub(position - old_offset + taken_bytes, Ordering::Relaxed);
            counts.bytes.fetch_add(keep_bytes, Ordering::Relaxed);
            Ok(())
        })
    }

    fn reject<'a>(&'a self, record: &'a SpooledAudit, reason: &'a str) -> BoxFuture<'a, Result<(), SpoolError>> {
        let (record, reason) = (record.clone(), reason.to_string());
        self.blocking(move |files, counts| {
            files.quarantine(&Quarantined { reason: &reason, record: Some(&record), line: None })?;
            counts.quarantined.fetch_add(1, Ordering::Relaxed);
            tracing::error!(id = ?record.id, %reason, "the database refused a spooled bitácora record; quarantined");
            Ok(())
        })
    }

    fn stats(&self) -> SpoolStats {
        SpoolStats {
            records: self.counts.records.load(Ordering::Relaxed),
            bytes: self.counts.bytes.load(Ordering::Relaxed),
            quarantined: self.counts.quarantined.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_domain::model::{AuditOutcome, NewAuditEntry};

    fn dir() -> PathBuf {
        std::env::temp_dir().join("helpdesk-tests").join(format!("spool-{:016x}", rand::random::<u64>()))
    }

    fn record(id: Option<i64>, endpoint: &str) -> SpooledAudit {
        SpooledAudit {
            id,
            entry: NewAuditEntry {
                at: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap().and_hms_opt(3, 0, 0).unwrap(),
                consumer_name: Some("UsuarioPrueba".into()),
                endpoint: endpoint.into(),
                method: "POST".into(),
                client_ip: "127.0.0.1".into(),
                body: "{\"a\":\"ñ\"}".into(),
                parent_id: None,
            },
            outcome: AuditOutcome { consumer_id: None, status: 503, duration_us: 7, user_id: None },
        }
    }

    fn endpoints(read: &SpoolRead) -> Vec<String> {
        read.records.iter().map(|r| r.entry.endpoint.clone()).collect()
    }

    #[tokio::test]
    async fn records_come_back_in_order_across_settles_and_reopening() {
        let d = dir();
        let spool = FileSpool::open(&d, 1 << 20).unwrap();
        spool.append(&[record(Some(1), "a"), record(None, "b")]).await.unwrap();
        spool.append(&[record(Some(3), "c")]).await.unwrap();
        assert_eq!(spool.stats().records, 3);
        let read = spool.peek(2).await.unwrap();
        assert_eq!(endpoints(&read), ["a", "b"]);
        // Number "b" and put both back at the head.
        let mut numbered = read.records.clone();
        numbered[1].id = Some(2);
        spool.settle(read.cursor, numbered).await.unwrap();
        assert_eq!(spool.stats().records, 3);
        // A restart keeps the numbers and the order.
        drop(spool);
        let spool = FileSpool::open(&d, 1 << 20).unwrap();
        assert_eq!(spool.stats().records, 3);
        let read = spool.peek(10).await.unwrap();
        assert_eq!(endpoints(&read), ["a", "b", "c"]);
        assert_eq!(read.records[1].id, Some(2));
        spool.append(&[record(Some(4), "d")]).await.unwrap();
        spool.settle(read.cursor, Vec::new()).await.unwrap();
        assert_eq!(spool.stats().records, 1, "the record appended after the peek stays");
        let read = spool.peek(10).await.unwrap();
        assert_eq!(endpoints(&read), ["d"]);
        spool.settle(read.cursor, Vec::new()).await.unwrap();
        assert_eq!(spool.stats(), SpoolStats { records: 0, bytes: 0, quarantined: 0 });
        assert_eq!(std::fs::metadata(d.join(LOG)).unwrap().len(), 0, "an empty spool is truncated");
        assert!(spool.peek(10).await.unwrap().records.is_empty());
    }

    #[tokio::test]
    async fn a_torn_or_corrupt_line_is_quarantined_and_the_rest_drains() {
        let d = dir();
        let spool = FileSpool::open(&d, 1 << 20).unwrap();
        spool.append(&[record(Some(1), "a")]).await.unwrap();
        drop(spool);
        // A crash in the middle of an append, then a corrupt line.
        let mut log = OpenOptions::new().append(true).open(d.join(LOG)).unwrap();
        log.write_all(b"{\"id\":2,\"entry\":{\"at\":").unwrap();
        drop(log);
        let spool = FileSpool::open(&d, 1 << 20).unwrap();
        spool.append(&[record(Some(3), "c")]).await.unwrap();
        assert_eq!(spool.stats().records, 3);
        let read = spool.peek(10).await.unwrap();
        assert_eq!(endpoints(&read), ["a"], "stops before the unreadable line");
        spool.settle(read.cursor, Vec::new()).await.unwrap();
        let read = spool.peek(10).await.unwrap();
        assert_eq!(endpoints(&read), ["c"], "the torn line is set aside, not fatal");
        spool.settle(read.cursor, Vec::new()).await.unwrap();
        let quarantined = std::fs::read_to_string(d.join(QUARANTINE)).unwrap();
        assert!(
            quarantined.contains("unreadable spool line") && quarantined.contains("{\\\"id\\\":2"),
            "{quarantined}"
        );
        assert_eq!(spool.stats().quarantined, 1);
        assert_eq!(spool.stats().records, 0);
        spool.reject(&record(Some(9), "z"), "refused").await.unwrap();
        assert!(std::fs::read_to_string(d.join(QUARANTINE)).unwrap().contains("\"refused\""));
    }

    #[tokio::test]
    async fn a_full_spool_refuses_and_keeps_what_it_has() {
        let d = dir();
        let one = serde_json::to_vec(&record(Some(1), "a")).unwrap().len() as u64 + 1;
        let spool = FileSpool::open(&d, one * 2).unwrap();
        spool.append(&[record(Some(1), "a"), record(Some(2), "b")]).await.unwrap();
        assert_eq!(spool.append(&[record(Some(3), "c")]).await, Err(SpoolError::Full(one * 2)));
        assert_eq!(spool.stats().records, 2);
        assert_eq!(spool.stats().bytes, one * 2);
        let read = spool.peek(10).await.unwrap();
        assert_eq!(endpoints(&read), ["a", "b"]);
    }
}
