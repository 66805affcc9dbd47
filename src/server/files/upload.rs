//! One upload, streamed: each chunk is hashed, checked against the limits and written to storage
//! as it arrives, so a file never sits in memory whole. Its type comes from its first bytes (then
//! its name); an image's dimensions from its header, its preview once it is in. Whatever stops an
//! upload midway (a limit, a dropped connection, a timeout) removes what it had written.

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use object_store::path::Path;
use sha2::{Digest, Sha256};

use super::{FileStorage, Files, images};
use crate::proto::{Uploaded, UserId, files::safe_file_name};
use crate::server::commands::ApiError;
use crate::server::store::{NewFile, RecordOutcome, Store};

/// How much of the start of a file is kept to tell its type and an image's dimensions (a JPEG's
/// size can follow tens of kilobytes of metadata).
const HEAD_BYTES: usize = 128 * 1024;

/// Parts being written to storage at once, besides the one filling (each is 5 MiB): what an
/// upload holds in memory, whatever its size.
const PARTS_IN_FLIGHT: usize = 2;

/// An upload as it arrives.
pub struct UploadRequest {
    pub uploader: UserId,
    /// As the client named it (made safe here).
    pub name: String,
    /// The Content-Length, when the client sent one.
    pub length: Option<u64>,
}

/// A temporary object that is removed unless the upload is recorded: an upload abandoned at any
/// point (an error, or its request dropped) leaves nothing behind.
struct Leftover {
    storage: FileStorage,
    at: Option<Path>,
}

impl Leftover {
    fn kept(mut self) {
        self.at = None;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(at) = self.at.take() {
            let storage = self.storage.clone();
            tokio::spawn(async move {
                if let Err(e) = storage.remove(&at).await {
                    tracing::warn!(error = %e, path = %at, "could not remove an abandoned upload");
                }
            });
        }
    }
}

/// `50 MiB`, `1 GiB`, `1.5 KiB`.
fn iec(bytes: u64) -> String {
    bytesize::ByteSize(bytes)
        .display()
        .iec()
        .to_string()
        .replace(".0 ", " ")
}

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "The file is larger than this server accepts ({})",
        iec(limit)
    ))
}

fn over_quota(quota: u64, used: i64) -> ApiError {
    ApiError::TooLarge(format!(
        "Your files would take more than your storage quota ({} used of {}): delete some messages \
         with files, or ask an admin",
        iec(used.max(0) as u64),
        iec(quota)
    ))
}

fn empty() -> ApiError {
    ApiError::BadRequest("The file is empty".into())
}

fn storage_failed(e: object_store::Error) -> ApiError {
    ApiError::Unavailable(crate::server::commands::Cause::of(e))
}

impl Files {
    /// Streams `body` into storage and records it as `request.uploader`'s. The body's errors are
    /// the door's words for it (cut off, too slow).
    pub async fn upload<S, B>(
        &self,
        store: &Store,
        request: UploadRequest,
        body: S,
    ) -> Result<Uploaded, ApiError>
    where
        S: Stream<Item = Result<B, ApiError>>,
        B: Buf,
    {
        let limits = self.limits;
        // Refused before a byte is read when the client says how much is coming.
        if let Some(length) = request.length {
            if length > limits.max_upload {
                return Err(too_large(limits.max_upload));
            }
            if length == 0 {
                return Err(empty());
            }
        }
        let used = store.storage_used(request.uploader).await?;
        let room = if limits.quota == 0 {
            u64::MAX
        } else {
            limits.quota.saturating_sub(used.max(0) as u64)
        };
        if request.length.is_some_and(|n| n > room) {
            return Err(over_quota(limits.quota, used));
        }
        let at = FileStorage::temporary(uuid::Uuid::new_v4());
        let leftover = Leftover {
            storage: self.storage.clone(),
            at: Some(at.clone()),
        };
        let received = self.receive(&at, body, room, used).await?;
        let name = safe_file_name(&request.name);
        let content_type = content_type(&received.head, &name);
        let dimensions = images::dimensions(&content_type, &received.head);
        let preview = self.preview(&at, &content_type, received.size).await;
        let file = NewFile {
            uploader: request.uploader,
            name,
            content_type,
            size: received.size as i64,
            sha256: received.sha256.clone(),
            dimensions,
            preview: preview
                .as_ref()
                .map(|(sha, bytes)| (sha.clone(), bytes.len() as i64)),
        };
        let place = async {
            self.storage.settle(&at, &received.sha256).await?;
            if let Some((sha, bytes)) = preview {
                self.storage.put(&sha, bytes).await?;
            }
            Ok(())
        };
        match store
            .record_upload(&file, limits.quota as i64, place)
            .await?
        {
            RecordOutcome::Recorded(file) => {
                leftover.kept();
                Ok(Uploaded {
                    file,
                    sha256: received.sha256,
                })
            }
            RecordOutcome::OverQuota(used) => Err(over_quota(limits.quota, used)),
        }
    }

    /// Writes `body` to `at`, at most `room` bytes (and `--max-upload-size`).
    async fn receive<S, B>(
        &self,
        at: &Path,
        body: S,
        room: u64,
        used: i64,
    ) -> Result<Received, ApiError>
    where
        S: Stream<Item = Result<B, ApiError>>,
        B: Buf,
    {
        let limit = self.limits.max_upload;
        let mut writer = self.storage.writer(at).await.map_err(storage_failed)?;
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        let failure = loop {
            let Some(chunk) = body.next().await else {
                break None;
            };
            let mut chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => break Some(e),
            };
            size += chunk.remaining() as u64;
            if size > limit {
                break Some(too_large(limit));
            }
            if size > room {
                break Some(over_quota(self.limits.quota, used));
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                hasher.update(part);
                if head.len() < HEAD_BYTES {
                    let take = part.len().min(HEAD_BYTES - head.len());
                    head.extend_from_slice(&part[..take]);
                }
                writer.write(part);
                let n = part.len();
                chunk.advance(n);
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                break Some(storage_failed(e));
            }
        };
        if let Some(failure) = failure {
            let _ = writer.abort().await;
            return Err(failure);
        }
        if size == 0 {
            let _ = writer.abort().await;
            return Err(empty());
        }
        writer.finish().await.map_err(storage_failed)?;
        Ok(Received {
            size,
            sha256: hex::encode(hasher.finalize()),
            head,
        })
    }

    /// An image's preview and its digest, made once; None for anything else, or an image too
    /// large or broken to decode.
    async fn preview(&self, at: &Path, content_type: &str, size: u64) -> Option<(String, Bytes)> {
        if !images::shown_inline(content_type) || size as i64 > images::PREVIEW_MAX_BYTES {
            return None;
        }
        let bytes = self.storage.read_all(at).await.ok()?;
        let content_type = content_type.to_string();
        let preview = tokio::task::spawn_blocking(move || images::preview(&content_type, &bytes))
            .await
            .ok()??;
        let sha = hex::encode(Sha256::digest(&preview));
        Some((sha, Bytes::from(preview)))
    }
}

/// What `receive` wrote.
struct Received {
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

/// A file's type from its first bytes, else from its name (never an image type the bytes do not
/// confirm), else text if it reads as UTF-8, else `application/octet-stream`.
pub fn content_type(head: &[u8], name: &str) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    if let Some(guess) = mime_guess::from_path(name).first() {
        let svg = guess.essence_str() == "image/svg+xml";
        if guess.type_() != mime_guess::mime::IMAGE || svg {
            return guess.essence_str().to_string();
        }
    }
    // The head may end inside a character.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(),
    };
    if text {
        "text/plain".into()
    } else {
        "application/octet-stream".into()
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn types_come_from_bytes_before_names() {
        assert_eq!(
            content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "x.txt"),
            "image/png"
        );
        assert_eq!(content_type(b"%PDF-1.7\n", "report"), "application/pdf");
        assert_eq!(content_type(b"hello", "notes.md"), "text/markdown");
        assert_eq!(content_type(b"<html><script>", "page.html"), "text/html");
        assert_eq!(
            content_type(b"<svg onload=alert(1)>", "x.svg"),
            "image/svg+xml"
        );
        // A name cannot make bytes an image.
        assert_eq!(content_type(b"<script>", "cat.png"), "text/html");
        assert_eq!(content_type(b"meow", "cat.png"), "text/plain");
        assert_eq!(
            content_type(b"\xff\xfe\x00\x01\x02", "blob"),
            "application/octet-stream"
        );
        assert_eq!(content_type(b"plain words", "README"), "text/plain");
    }
}
