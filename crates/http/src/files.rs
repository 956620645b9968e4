//! Serving a stored attachment, inert: the API's and the console's
//! downloads go through [`serve_attachment`].

use std::path::{Path, PathBuf};

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use helpdesk_domain::model::{Attachment, served_name, served_type};
use helpdesk_domain::services::is_safe_route;

/// Why an attachment's file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No file under the stored route, or a route leaving the storage.
    #[error("attachment file missing or outside the storage")]
    Missing,
    #[error("cannot open the attachment's file")]
    Open(#[source] std::io::Error),
}

/// The attachment's file from `storage`, served inert whatever the customer
/// declared: an allow-listed type or `application/octet-stream`, always a
/// download (a safe `Content-Disposition`), `Content-Security-Policy:
/// sandbox` should a browser open it; with an ETag and `Last-Modified`.
pub async fn serve_attachment(storage: &Path, a: &Attachment, req: &HttpRequest) -> Result<HttpResponse, ServeError> {
    let Some(path) = stored_file(storage, &a.route) else {
        tracing::warn!(attachment = a.id, route = %a.route, "attachment file missing or outside the storage");
        return Err(ServeError::Missing);
    };
    let mime: mime::Mime = served_type(&a.mime_type).parse().unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let file = actix_files::NamedFile::open_async(&path)
        .await
        .map_err(ServeError::Open)?
        .set_content_type(mime)
        .set_content_disposition(disposition(&served_name(&a.name)))
        .use_etag(true)
        .use_last_modified(true);
    let mut response = file.into_response(req);
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    Ok(response)
}

/// The file of an attachment, only from inside the storage directory: the
/// stored route must be relative and plain, and the file it names, links
/// resolved, must still be inside.
fn stored_file(storage: &Path, route: &str) -> Option<PathBuf> {
    if !is_safe_route(route) {
        return None;
    }
    let root = storage.canonicalize().ok()?;
    let file = root.join(route).canonicalize().ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// A file name safe for `Content-Disposition`: no path, no control
/// characters, no quotes; the original goes in `filename*` (RFC 6266).
fn disposition(name: &str) -> ContentDisposition {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let plain: String =
        base.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let plain = if plain.trim().is_empty() { "adjunto".to_string() } else { plain };
    let mut parameters = vec![DispositionParam::Filename(plain)];
    if !base.is_ascii() && !base.chars().any(char::is_control) {
        parameters.push(DispositionParam::FilenameExt(header::ExtendedValue {
            charset: header::Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: base.as_bytes().to_vec(),
        }));
    }
    ContentDisposition { disposition: DispositionType::Attachment, parameters }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_storage_are_served() {
        let root = std::env::temp_dir().join(format!("hd-adjuntos-{}", std::process::id()));
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::write(root.join("logs/error.txt"), b"x").unwrap();
        let outside = std::env::temp_dir().join(format!("hd-fuera-{}.txt", std::process::id()));
        std::fs::write(&outside, b"secreto").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, root.join("logs/enlace.txt")).unwrap();
        assert!(stored_file(&root, "logs/error.txt").is_some());
        for bad in ["../fuera.txt", "/etc/passwd", "logs/../../etc/passwd", "logs", "no-existe.txt"] {
            assert_eq!(stored_file(&root, bad), None, "{bad}");
        }
        #[cfg(unix)]
        assert_eq!(stored_file(&root, "logs/enlace.txt"), None, "a link out of the storage");
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_file(&outside).unwrap();
    }

    #[test]
    fn dispositions_are_safe() {
        let d = disposition("../../informe \"final\".pdf");
        assert_eq!(d.to_string(), "attachment; filename=\"informe _final_.pdf\"");
        let d = disposition("reporte\r\nSet-Cookie: x.txt");
        assert!(!d.to_string().contains('\r') && !d.to_string().contains('\n'), "{d}");
        let d = disposition("año.pdf");
        assert!(d.to_string().contains("filename*=UTF-8''a%C3%B1o.pdf"), "{d}");
    }
}
