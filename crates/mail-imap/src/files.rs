//! The reading channel's storage directory.

use std::path::PathBuf;

use helpdesk_domain::crypto::sha256_hex;
use helpdesk_domain::model::MailLocation;
use helpdesk_domain::ports::{FileFuture, FileStore, StorageError};
use helpdesk_domain::services::is_safe_route;

/// Attachments under `adjuntos/<2 hex>/<14 hex>/<name>` (the hex is the
/// SHA-256 of the content, so a re-read mail writes no new file), raw
/// quarantined mail under `cuarentena/<account>/<mailbox>/<uidvalidity>-<uid>.eml`.
/// Files are written to a temporary name and renamed: a reader killed
/// mid-write leaves no half file under a route.
#[derive(Debug, Clone)]
pub struct DirFileStore {
    root: PathBuf,
}

impl DirFileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file of a route, refusing routes that leave the storage.
    pub fn path_of(&self, route: &str) -> Result<PathBuf, StorageError> {
        if !is_safe_route(route) {
            return Err(StorageError(format!("unsafe route {route:?}")));
        }
        Ok(self.root.join(route))
    }

    async fn write(&self, route: String, content: &[u8]) -> Result<String, StorageError> {
        let path = self.path_of(&route)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(route);
        }
        let fail = |e: std::io::Error| StorageError(format!("{}: {e}", path.display()));
        let dir = path.parent().ok_or_else(|| StorageError(format!("no directory for {route}")))?;
        tokio::fs::create_dir_all(dir).await.map_err(fail)?;
        let tmp = dir.join(format!(".tmp-{}", helpdesk_domain::crypto::random_token(12)));
        tokio::fs::write(&tmp, content).await.map_err(fail)?;
        tokio::fs::rename(&tmp, &path).await.map_err(fail)?;
        Ok(route)
    }
}

/// A file name that stays one path segment: no separators, no control
/// characters, no leading dots, at most 120 characters.
pub(crate) fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') { '_' } else { c })
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() { "adjunto".into() } else { cleaned.to_string() }
}

impl FileStore for DirFileStore {
    fn put_attachment<'a>(&'a self, name: &'a str, content: &'a [u8]) -> FileFuture<'a, String> {
        Box::pin(async move {
            let hash = sha256_hex(content);
            self.write(format!("adjuntos/{}/{}/{}", &hash[..2], &hash[2..16], safe_name(name)), content).await
        })
    }

    fn put_raw<'a>(&'a self, at: &'a MailLocation, raw: &'a [u8]) -> FileFuture<'a, String> {
        Box::pin(async move {
            let mailbox = safe_name(&at.mailbox.replace(['/', '\\'], "_"));
            let route = format!("cuarentena/{}/{mailbox}/{}-{}.eml", at.account_id, at.uid_validity, at.uid);
            self.write(route, raw).await
        })
    }

    fn get<'a>(&'a self, route: &'a str) -> FileFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let path = self.path_of(route)?;
            tokio::fs::read(&path).await.map_err(|e| StorageError(format!("{}: {e}", path.display())))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn names_stay_one_segment() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\temp\\factura.pdf"), "factura.pdf");
        assert_eq!(safe_name(".htaccess"), "htaccess");
        assert_eq!(safe_name("a\u{0}b:c.txt"), "a_b_c.txt");
        assert_eq!(safe_name("  "), "adjunto");
        assert_eq!(safe_name(&"x".repeat(300)).len(), 120);
    }

    #[tokio::test]
    async fn same_content_and_name_is_one_file_and_routes_stay_inside() {
        let dir = std::env::temp_dir().join(format!("helpdesk-files-{}", helpdesk_domain::crypto::random_token(8)));
        let store = DirFileStore::new(&dir);
        let a = store.put_attachment("informe.pdf", b"%PDF-1.4 uno").await.unwrap();
        let b = store.put_attachment("informe.pdf", b"%PDF-1.4 uno").await.unwrap();
        let c = store.put_attachment("informe.pdf", b"%PDF-1.4 dos").await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("adjuntos/") && a.ends_with("/informe.pdf"), "{a}");
        assert_eq!(store.get(&a).await.unwrap(), b"%PDF-1.4 uno");
        assert_eq!(store.get(&c).await.unwrap(), b"%PDF-1.4 dos");
        let at = MailLocation { account_id: 3, mailbox: "Soporte/Entrada".into(), uid_validity: 77, uid: 9 };
        let raw = store.put_raw(&at, b"From: x").await.unwrap();
        assert_eq!(raw, "cuarentena/3/Soporte_Entrada/77-9.eml");
        assert_eq!(store.get(&raw).await.unwrap(), b"From: x");
        assert!(store.get("../secreto").await.is_err());
        assert!(store.get("/etc/passwd").await.is_err());
        let leftovers: Vec<_> = walk(&dir).into_iter().filter(|p| p.contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p.display().to_string()) }
        }
        out
    }
}
