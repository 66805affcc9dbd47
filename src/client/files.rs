//! Files from the client's side: uploading one from disk as it is read (with progress), and
//! downloading one to disk under a name that can only ever be a plain file name in the chosen
//! directory, checked against its digest.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::api::{Api, http_error, session_over};
use super::error::CliError;
use crate::proto::files::safe_file_name;
use crate::proto::{FileId, Uploaded};

/// Longest an upload or download may take in all (the client's usual limit is 30 s).
const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Told how many bytes have gone (or come) so far, and of how many when known.
pub type Progress = std::sync::Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

impl Api {
    /// Sends `path` as a new upload (named by its file name), calling `progress` as it goes.
    pub async fn upload(&self, path: &Path, progress: Progress) -> Result<Uploaded, CliError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let response = self
            .authorized(Method::POST, "/files", &[("name", name.as_str())], || {
                open_body(path, progress.clone())
            })
            .await?;
        let status = response.status();
        let reply: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(http_error(status, &reply));
        }
        serde_json::from_value(reply)
            .map_err(|e| CliError::Server(format!("unexpected reply from the server: {e}")))
    }

    /// Saves file `id` at `to` (a directory: under the file's own name, made safe; else that
    /// path), never over an existing file. Returns where it went and its size.
    pub async fn download(
        &self,
        id: FileId,
        to: &Path,
        progress: Progress,
    ) -> Result<(PathBuf, u64), CliError> {
        let response = self
            .authorized(Method::GET, &format!("/files/{id}"), &[], || async {
                Ok(reqwest::Body::from(Vec::new()))
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            let reply: serde_json::Value = response.json().await.unwrap_or_default();
            return Err(http_error(status, &reply));
        }
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(disposition_name)
            .unwrap_or_else(|| format!("file-{id}"));
        let expected = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|tag| tag.trim_matches('"').to_string());
        let target = free_path(&destination(to, &name));
        let partial = target.with_file_name(format!(
            ".{}.part",
            target.file_name().unwrap_or_default().to_string_lossy()
        ));
        let local = |e: std::io::Error| CliError::Local(format!("{}: {e}", partial.display()));
        let mut file = tokio::fs::File::create(&partial).await.map_err(local)?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let total = response.content_length();
        let mut body = response.bytes_stream();
        let received = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk
                    .map_err(|e| CliError::Server(format!("the download was cut off: {e}")))?;
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(local)?;
                written += chunk.len() as u64;
                progress(written, total);
            }
            file.flush().await.map_err(local)?;
            Ok::<(), CliError>(())
        }
        .await;
        let digest = hex::encode(hasher.finalize());
        let checked = received.and_then(|()| match expected {
            Some(tag) if tag != digest => Err(CliError::Server(
                "the download does not match its digest; try again".into(),
            )),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, &target).await.map_err(local)?;
        Ok((target, written))
    }

    /// A request with the session's token, made again (with a fresh body) after one refresh when
    /// the token had expired.
    async fn authorized<F, Fut>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: F,
    ) -> Result<reqwest::Response, CliError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Body, CliError>>,
    {
        let session = self.session()?;
        let mut token = session.access_token.clone();
        for attempt in 0..2 {
            let request = self
                .http()
                .request(method.clone(), format!("{}{path}", self.base()))
                .query(query)
                .timeout(TRANSFER_TIMEOUT)
                .bearer_auth(&token)
                .body(body().await?);
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return Err(self.unreachable(e).await),
            };
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            token = self.refresh(&session).await?.access_token;
        }
        Err(session_over())
    }
}

/// A file's bytes as they are read from disk, with progress.
async fn open_body(path: &Path, progress: Progress) -> Result<reqwest::Body, CliError> {
    let local = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
    let file = tokio::fs::File::open(path).await.map_err(local)?;
    let total = file.metadata().await.map_err(local)?.len();
    let mut sent = 0u64;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        if let Ok(chunk) = &chunk {
            sent += chunk.len() as u64;
            progress(sent, Some(total));
        }
        chunk
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// The file name in a `Content-Disposition` (its UTF-8 form first), made safe.
fn disposition_name(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        if let Some(encoded) = part.strip_prefix("filename*=UTF-8''") {
            let bytes: Vec<u8> = percent_decode(encoded);
            return Some(safe_file_name(&String::from_utf8_lossy(&bytes)));
        }
        if let Some(quoted) = part.strip_prefix("filename=") {
            plain = Some(safe_file_name(quoted.trim_matches('"')));
        }
    }
    plain
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `to` itself, or `to/name` when `to` is a directory. The server's name is only ever a file
/// name inside the directory the user chose.
fn destination(to: &Path, name: &str) -> PathBuf {
    if to.is_dir() {
        to.join(safe_file_name(name))
    } else {
        to.to_path_buf()
    }
}

/// `path`, or `name (1).ext`, `name (2).ext`... when it is taken: a download never overwrites.
fn free_path(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1..)
        .map(|n| path.with_file_name(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .expect("some name is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_from_the_server_never_leaves_the_chosen_directory() {
        assert_eq!(
            disposition_name("attachment; filename=\"x\"; filename*=UTF-8''..%2F..%2F.bashrc"),
            Some("bashrc".into())
        );
        assert_eq!(
            disposition_name("attachment; filename=\"/etc/passwd\""),
            Some("passwd".into())
        );
        assert_eq!(
            disposition_name("inline; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf"),
            Some("Résumé.pdf".into())
        );
        let dir = std::env::temp_dir();
        assert_eq!(destination(&dir, "../evil"), dir.join("evil"));
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("rtchat-free-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "x").unwrap();
        assert_eq!(free_path(&dir.join("a.txt")), dir.join("a (1).txt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
