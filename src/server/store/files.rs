//! Files: uploads recorded once their bytes are in storage, the checks that let a file be
//! attached or read, each user's storage use, and what the sweep removes.

use chrono::{DateTime, Utc};
use std::future::Future;

use super::{Store, StoreError};
use crate::proto::{Attachment, FileId, MessageId, UserId};

/// An upload whose bytes are in place (`blobs/<sha256>`), to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub uploader: UserId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub dimensions: Option<(i32, i32)>,
    /// A preview's digest and size (its bytes already stored).
    pub preview: Option<(String, i64)>,
}

/// A file as a download needs it.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub preview_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why a file cannot be attached.
#[derive(Debug, PartialEq, Eq)]
pub enum AttachRefusal {
    /// Unknown, or someone else's.
    NotFound(FileId),
    /// Sent already, with another message.
    Attached(FileId),
}

/// What recording an upload came to.
#[derive(Debug)]
pub enum RecordOutcome {
    Recorded(Attachment),
    /// The uploader's files would come to more than their quota (bytes used now).
    OverQuota(i64),
}

const FILE_COLUMNS: &str =
    "f.id, f.name, f.content_type, f.size, f.sha256, f.preview_sha256, f.created_at";

fn file_from_row(r: &tokio_postgres::Row) -> StoredFile {
    StoredFile {
        id: r.get(0),
        name: r.get(1),
        content_type: r.get(2),
        size: r.get(3),
        sha256: r.get(4),
        preview_sha256: r.get(5),
        created_at: r.get(6),
    }
}

fn attachment_from_row(r: &tokio_postgres::Row) -> Attachment {
    Attachment {
        id: r.get(0),
        name: r.get(1),
        content_type: r.get(2),
        size: r.get(3),
        width: r.get(4),
        height: r.get(5),
        preview: r.get(6),
    }
}

impl Store {
    /// Bytes `user`'s files take (each upload counted, even of bytes stored once for several).
    pub async fn storage_used(&self, user: UserId) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce(sum(size), 0)::bigint FROM files WHERE uploader_id = $1",
                &[&user],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Records an upload, within `quota` bytes for its uploader (0: none). `place` moves its bytes
    /// to their content address; it runs while this transaction holds the blob's row, so that a
    /// sweep removing the same bytes (`remove_blob_if_unused`) happens wholly before or after.
    pub async fn record_upload<F>(
        &self,
        file: &NewFile,
        quota: i64,
        place: F,
    ) -> Result<RecordOutcome, StoreError>
    where
        F: Future<Output = Result<(), object_store::Error>>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One upload at a time per user past this point: two cannot both fit in the last space.
        tx.execute("SELECT pg_advisory_xact_lock(24, $1)", &[&file.uploader])
            .await?;
        let used: i64 = tx
            .query_one(
                "SELECT coalesce(sum(size), 0)::bigint FROM files WHERE uploader_id = $1",
                &[&file.uploader],
            )
            .await?
            .get(0);
        if quota > 0 && used + file.size > quota {
            return Ok(RecordOutcome::OverQuota(used));
        }
        let keep_blob = "INSERT INTO blobs (sha256, size) VALUES ($1, $2)
                         ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size";
        tx.execute(keep_blob, &[&file.sha256, &file.size]).await?;
        if let Some((sha, size)) = &file.preview {
            tx.execute(keep_blob, &[sha, size]).await?;
        }
        place.await?;
        let (width, height) = file.dimensions.unzip();
        let preview_sha = file.preview.as_ref().map(|(sha, _)| sha);
        let row = tx
            .query_one(
                "INSERT INTO files (uploader_id, name, content_type, size, sha256, width, height,
                                    preview_sha256)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING id, name, content_type, size, width, height, preview_sha256 IS NOT NULL",
                &[
                    &file.uploader,
                    &file.name,
                    &file.content_type,
                    &file.size,
                    &file.sha256,
                    &width,
                    &height,
                    &preview_sha,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(RecordOutcome::Recorded(attachment_from_row(&row)))
    }

    /// `ids` as `sender` may attach them, in the order given: their own uploads, not yet sent
    /// (or, for a retry, `client_id`'s earlier message's own).
    pub async fn files_to_attach(
        &self,
        sender: UserId,
        ids: &[FileId],
        client_id: Option<&str>,
    ) -> Result<Result<Vec<Attachment>, AttachRefusal>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT f.id, f.name, f.content_type, f.size, f.width, f.height,
                        f.preview_sha256 IS NOT NULL,
                        f.message_id IS NULL
                          OR ($3::text IS NOT NULL AND m.client_id = $3 AND m.sender_id = $1)
                 FROM files f LEFT JOIN messages m ON m.id = f.message_id
                 WHERE f.id = ANY($2) AND f.uploader_id = $1",
            )
            .await?;
        let rows = client.query(&stmt, &[&sender, &ids, &client_id]).await?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(row) = rows.iter().find(|r| r.get::<_, FileId>(0) == *id) else {
                return Ok(Err(AttachRefusal::NotFound(*id)));
            };
            if !row.get::<_, bool>(7) {
                return Ok(Err(AttachRefusal::Attached(*id)));
            }
            found.push(attachment_from_row(row));
        }
        Ok(Ok(found))
    }

    /// File `id` if `reader` may read it: their own upload not yet sent, or a file of a message
    /// (not deleted) in a room they are a member of now.
    pub async fn readable_file(
        &self,
        id: FileId,
        reader: UserId,
    ) -> Result<Option<StoredFile>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {FILE_COLUMNS} FROM files f
                 LEFT JOIN messages m ON m.id = f.message_id AND m.deleted_at IS NULL
                 WHERE f.id = $1 AND (
                    (f.message_id IS NULL AND f.uploader_id = $2)
                    OR EXISTS (SELECT 1 FROM chat_room_members mm
                               WHERE mm.chat_room_id = m.chat_room_id AND mm.user_id = $2))"
            ))
            .await?;
        Ok(client
            .query_opt(&stmt, &[&id, &reader])
            .await?
            .as_ref()
            .map(file_from_row))
    }

    /// Removes uploads never attached that are older than `age`; how many.
    pub async fn remove_unattached(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let seconds = age.as_secs_f64();
        Ok(client
            .execute(
                "DELETE FROM files WHERE message_id IS NULL
                   AND created_at < now() - make_interval(secs => $1)",
                &[&seconds],
            )
            .await?)
    }

    /// Up to `limit` stored contents no file or preview refers to any more.
    pub async fn unused_blobs(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT b.sha256 FROM blobs b
                 WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)
                   AND NOT EXISTS (SELECT 1 FROM files f WHERE f.preview_sha256 = b.sha256)
                 LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Forgets stored content `sha256` and removes its bytes (`remove`), if nothing refers to it:
    /// the row stays locked until the bytes are gone, so that an upload of the same bytes
    /// (`record_upload`) waits and then stores them again. Whether it was removed.
    pub async fn remove_blob_if_unused<F>(
        &self,
        sha256: &str,
        remove: F,
    ) -> Result<bool, StoreError>
    where
        F: Future<Output = Result<(), object_store::Error>>,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let gone = tx
            .query_opt(
                "DELETE FROM blobs b WHERE b.sha256 = $1
                   AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)
                   AND NOT EXISTS (SELECT 1 FROM files f WHERE f.preview_sha256 = b.sha256)
                 RETURNING sha256",
                &[&sha256],
            )
            .await;
        match gone {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(false),
            // A file refers to it again (committed while this waited): keep it.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        remove.await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The files of message `id` (none when deleted), for tests and tools.
    pub async fn files_of_message(&self, id: MessageId) -> Result<Vec<FileId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM files WHERE message_id = $1 ORDER BY id",
                &[&id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
