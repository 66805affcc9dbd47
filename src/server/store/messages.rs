//! Messages: storing one (with the sender's `client_id` making retries safe) and reading history pages.

use chrono::{DateTime, Utc};

use deadpool_postgres::Object;

use super::{RoomKind, Store, StoreError};
use crate::proto::{
    Attachment, FileId, LiveMessage, MessageId, ReplyPreview, RoomId, ThreadSummary, UserId,
};

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub kind: RoomKind,
    pub sender_id: UserId,
    /// The sender's names, as the message carries them to its readers (from the sender's
    /// authentication: the insert looks nobody up).
    pub sender_username: String,
    pub sender_full_name: Option<String>,
    pub content: String,
    pub client_id: Option<String>,
    /// A message of the same room this one answers (checked before it is sent).
    pub reply_to: Option<MessageId>,
    /// The first message of the thread the answered one is in (found with that check).
    pub thread_root: Option<MessageId>,
    /// Members named in it.
    pub mentions: Vec<UserId>,
    /// Files the sender asked to attach (their uploads' ids)...
    pub files: Vec<FileId>,
    /// ...as the message carries them (checked and filled in before it is sent).
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: MessageId,
    pub room_id: RoomId,
    pub sender_id: Option<UserId>,
    pub sender_username: Option<String>,
    pub sender_full_name: Option<String>,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub client_id: Option<String>,
    pub reply_to: Option<ReplyPreview>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    pub mentions: Vec<UserId>,
    pub attachments: Vec<Attachment>,
    /// Who reacted with what.
    pub reactions: Vec<super::Reacted>,
    pub thread_root: Option<MessageId>,
    /// A thread's first message: its replies and the last one's time.
    pub thread: Option<ThreadSummary>,
}

impl StoredMessage {
    /// Whether this is `sent` as stored (by whichever attempt stored it).
    pub fn is(&self, sent: &NewMessage) -> bool {
        self.room_id == sent.room_id
            && self.sender_id == Some(sent.sender_id)
            && self.content == sent.content
            && self.client_id == sent.client_id
    }

    /// The message as live frames carry it to anyone it does not name.
    pub fn to_live(&self) -> LiveMessage {
        LiveMessage {
            room_id: self.room_id,
            message_id: self.id,
            sender_id: self.sender_id,
            sender_username: self.sender_username.clone(),
            sender_full_name: self.sender_full_name.clone(),
            content: self.content.clone(),
            created_at: self.created_at.into(),
            client_id: self.client_id.clone(),
            reply_to: self.reply_to.clone(),
            edited_at: self.edited_at.map(Into::into),
            deleted: self.deleted,
            mention: false,
            attachments: self.attachments.clone(),
            reactions: super::as_seen_by(&self.reactions, 0),
            thread_root: self.thread_root,
            thread: self.thread.clone(),
        }
    }

    /// The message as `reader` sees it (`mention` when it names them).
    pub fn to_live_for(&self, reader: UserId) -> LiveMessage {
        LiveMessage {
            mention: self.names(reader),
            reactions: super::as_seen_by(&self.reactions, reader),
            ..self.to_live()
        }
    }

    /// Whether it names `reader` (@username).
    pub fn names(&self, reader: UserId) -> bool {
        self.mentions.contains(&reader)
    }
}

#[derive(Debug)]
pub enum InsertOutcome {
    Stored(StoredMessage),
    /// This sender already stored a message with this `client_id`: here it is, unchanged.
    Duplicate(StoredMessage),
    /// The `client_id` was used before for a message in another room.
    ClientIdReused,
    /// The sender is not a member of a room of that kind with that id.
    NotMember,
}

/// Which slice of a room's history to read, in message-id order.
#[derive(Debug, Clone, Copy)]
pub enum HistoryPage {
    /// The `limit` newest messages below `before` (or at all), skipping `offset` of them.
    Newest {
        before: Option<MessageId>,
        offset: i64,
        limit: i64,
    },
    /// The `limit` oldest messages above `after` (and below `before`).
    After {
        after: MessageId,
        before: Option<MessageId>,
        limit: i64,
    },
}

/// A message's columns as `from_row` reads them, with `$quote`: the sender, first 80 characters and
/// deletion of the message it answers.
macro_rules! message_columns {
    ($quote:literal) => {
        concat!(
            "m.id, m.chat_room_id, m.sender_id, u.username, u.full_name, m.content, m.created_at, ",
            "m.client_id, m.reply_to, m.edited_at, m.deleted_at IS NOT NULL, m.mentions, ",
            $quote,
            ", m.attachments::text, m.reactions::text, m.thread_root, m.thread_replies, ",
            "m.thread_last_reply_at"
        )
    };
}
/// A message's columns, from `messages m` joined with `MESSAGE_JOINS`.
pub(super) const MESSAGE_COLUMNS: &str =
    message_columns!("ru.username, left(r.content, 80), r.deleted_at IS NOT NULL");
/// `MESSAGE_COLUMNS` of a message just inserted, but its sender's names (the sender's own, from
/// `NewMessage`) and the quote of the message it answers (`Store::quote_replies` adds it). The
/// writer's statement keeps one generic plan, made when the tables may have been empty: a join in
/// it could stay a scan of a whole table while the table grows (measured: 3,600 sends/s falling to
/// 1,260/s over three 10-second runs, 8,600/s once planned again, with a join to `messages`; a
/// join to `users` scanned every user for each batch).
const INSERTED_COLUMNS: &str = "m.id, m.chat_room_id, m.sender_id, NULL::text, NULL::text, \
     m.content, m.created_at, m.client_id, m.reply_to, m.edited_at, m.deleted_at IS NOT NULL, \
     m.mentions, NULL::text, NULL::text, false, m.attachments::text, NULL::text, m.thread_root, \
     0, NULL::timestamptz";
/// The sender, and the message answered with its sender.
pub(super) const MESSAGE_JOINS: &str = "LEFT JOIN users u ON u.id = m.sender_id \
     LEFT JOIN messages r ON r.id = m.reply_to LEFT JOIN users ru ON ru.id = r.sender_id";

/// A batch of messages as the insert's arrays, one per column (`unnest` makes rows of them).
struct BatchColumns<'a> {
    rooms: Vec<RoomId>,
    kinds: Vec<&'a str>,
    senders: Vec<UserId>,
    contents: Vec<&'a str>,
    client_ids: Vec<Option<&'a str>>,
    replies: Vec<Option<MessageId>>,
    // Arrays per message, as PostgreSQL's array text: unnest cannot take an array of arrays of
    // different lengths.
    mentions: Vec<String>,
    attachments: Vec<Option<String>>,
    thread_roots: Vec<Option<MessageId>>,
    /// Each attached file, with the id of its message and its sender (the uploader).
    files: Vec<FileId>,
    file_messages: Vec<MessageId>,
    file_senders: Vec<UserId>,
    file_names: Vec<Option<String>>,
}

/// `{1,2,3}`.
fn array_text<T: ToString>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    format!("{{{}}}", items.join(","))
}

impl<'a> BatchColumns<'a> {
    fn of(batch: &'a [NewMessage], ids: &[MessageId]) -> Self {
        let with_files = |m: &NewMessage| !m.attachments.is_empty();
        let attached = || {
            batch
                .iter()
                .zip(ids)
                .flat_map(|(m, id)| m.attachments.iter().map(move |a| (a.id, *id, m.sender_id)))
        };
        BatchColumns {
            rooms: batch.iter().map(|m| m.room_id).collect(),
            kinds: batch.iter().map(|m| m.kind.as_str()).collect(),
            senders: batch.iter().map(|m| m.sender_id).collect(),
            contents: batch.iter().map(|m| m.content.as_str()).collect(),
            client_ids: batch.iter().map(|m| m.client_id.as_deref()).collect(),
            replies: batch.iter().map(|m| m.reply_to).collect(),
            thread_roots: batch.iter().map(|m| m.thread_root).collect(),
            mentions: batch
                .iter()
                .map(|m| array_text(m.mentions.iter()))
                .collect(),
            files: attached().map(|(file, _, _)| file).collect(),
            file_messages: attached().map(|(_, message, _)| message).collect(),
            file_senders: attached().map(|(_, _, sender)| sender).collect(),
            attachments: batch
                .iter()
                .map(|m| {
                    with_files(m).then(|| {
                        serde_json::to_string(&m.attachments).expect("attachments serialize")
                    })
                })
                .collect(),
            file_names: batch
                .iter()
                .map(|m| with_files(m).then(|| searchable_names(&m.attachments)))
                .collect(),
        }
    }

    /// The insert's parameters, in its order, with the batch's ids.
    fn params<'s>(
        &'s self,
        ids: &'s &'s [MessageId],
    ) -> [&'s (dyn tokio_postgres::types::ToSql + Sync); 11] {
        [
            &self.rooms,
            &self.kinds,
            &self.senders,
            &self.contents,
            &self.client_ids,
            ids,
            &self.replies,
            &self.mentions,
            &self.attachments,
            &self.file_names,
            &self.thread_roots,
        ]
    }
}

/// Gives each attached file its message. A message the insert did not store (a retry, a
/// non-member's) takes no file.
const ATTACH_FILES: &str = "UPDATE files f SET message_id = v.message
     FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS v(file, message, sender)
     WHERE f.id = v.file AND f.uploader_id = v.sender AND f.message_id IS NULL
       AND EXISTS (SELECT 1 FROM messages m WHERE m.id = v.message AND m.sender_id = v.sender)";

/// The statements a batch may need right behind its insert, prepared before it: in the join that
/// sends them each must go at its first poll, in order, before the COMMIT.
struct AfterInsert {
    attach: Option<tokio_postgres::Statement>,
    count: Option<tokio_postgres::Statement>,
    /// The batch's replies (to count in their threads).
    replies: Vec<MessageId>,
}

impl AfterInsert {
    async fn prepare(
        client: &Object,
        columns: &BatchColumns<'_>,
        ids: &[MessageId],
    ) -> Result<AfterInsert, StoreError> {
        let attach = if columns.files.is_empty() {
            None
        } else {
            Some(client.prepare_cached(ATTACH_FILES).await?)
        };
        let replies: Vec<MessageId> = ids
            .iter()
            .zip(&columns.thread_roots)
            .filter(|(_, root)| root.is_some())
            .map(|(id, _)| *id)
            .collect();
        let count = if replies.is_empty() {
            None
        } else {
            Some(client.prepare_cached(COUNT_REPLIES).await?)
        };
        Ok(AfterInsert {
            attach,
            count,
            replies,
        })
    }
}

/// Each thread with new replies among the messages `$1`: its first message counts them and
/// keeps the last one's time. (A retried message is not among them: its id was never stored.)
const COUNT_REPLIES: &str = "UPDATE messages r
     SET thread_replies = r.thread_replies + v.n,
         thread_last_reply_at = greatest(r.thread_last_reply_at, v.last)
     FROM (SELECT thread_root, count(*)::int AS n, max(created_at) AS last FROM messages
           WHERE id = ANY($1) AND thread_root IS NOT NULL GROUP BY thread_root) v
     WHERE r.id = v.thread_root";

/// `COUNT_REPLIES` for the batch's replies, sent only when it has any (as `attach_files`).
async fn count_replies(
    client: &Object,
    statement: Option<&tokio_postgres::Statement>,
    replies: &[MessageId],
) -> Result<(), StoreError> {
    if let Some(statement) = statement {
        client.execute(statement, &[&replies]).await?;
    }
    Ok(())
}

/// `ATTACH_FILES` for the batch, in its transaction right behind the insert: a statement of its
/// own, sent only for a batch with files, so that the insert's plan stays as it was.
async fn attach_files(
    client: &Object,
    statement: Option<&tokio_postgres::Statement>,
    columns: &BatchColumns<'_>,
) -> Result<(), StoreError> {
    let Some(statement) = statement else {
        return Ok(());
    };
    client
        .execute(
            statement,
            &[
                &columns.files,
                &columns.file_messages,
                &columns.file_senders,
            ],
        )
        .await?;
    Ok(())
}

/// Attachments' names as search reads them: each whole, and in words (`build-log.txt` is found by
/// `build`, `log` and `txt` too: the search parser keeps a name with dots as one word).
fn searchable_names(attachments: &[Attachment]) -> String {
    let mut words = Vec::new();
    for a in attachments {
        words.push(a.name.clone());
        words.push(a.name.replace(|c: char| !c.is_alphanumeric(), " "));
    }
    words.join(" ")
}

pub(super) fn from_row(r: &tokio_postgres::Row) -> StoredMessage {
    let reply_to: Option<MessageId> = r.get(8);
    StoredMessage {
        id: r.get(0),
        room_id: r.get(1),
        sender_id: r.get(2),
        sender_username: r.get(3),
        sender_full_name: r.get(4),
        content: r.get(5),
        created_at: r.get(6),
        client_id: r.get(7),
        edited_at: r.get(9),
        deleted: r.get(10),
        mentions: r.get(11),
        reply_to: reply_to.map(|message_id| ReplyPreview {
            message_id,
            sender_username: r.get(12),
            excerpt: r.get::<_, Option<String>>(13).unwrap_or_default(),
            deleted: r.get(14),
        }),
        attachments: r
            .get::<_, Option<&str>>(15)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
        reactions: r
            .get::<_, Option<&str>>(16)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
        thread_root: r.get(17),
        thread: match r.get::<_, i32>(18) {
            0 => None,
            replies => Some(ThreadSummary {
                replies,
                last_reply_at: r.get::<_, Option<DateTime<Utc>>>(19).map(Into::into),
            }),
        },
    }
}

impl Store {
    /// Opens a transaction on `client` and takes `n` positions in the log (message ids) from
    /// `log_head`, whose row stays locked until the transaction ends: across every instance,
    /// positions are handed out in the order their transactions commit, so a visible position
    /// means every lower one is settled (a sync cursor can never skip a late commit), and an
    /// aborted transaction's positions go to the next one (see `sql/V9__dense_log.sql`).
    /// The ids are known before the insert, so that when the answer to an insert is lost with its
    /// connection the writer can still look for what it stored.
    pub async fn begin_log_batch(client: &Object, n: usize) -> Result<Vec<MessageId>, StoreError> {
        let n = n.clamp(1, i32::MAX as usize) as i64;
        let began = async {
            let stmt = client
                .prepare_cached(
                    "UPDATE log_head SET next_position = next_position + $1
                     RETURNING next_position - $1",
                )
                .await?;
            // BEGIN and the prepared UPDATE sent together: one round trip, nothing to parse.
            let count: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&n];
            let (begun, head) = tokio::join!(
                client.batch_execute("BEGIN"),
                client.query_one(&stmt, &count)
            );
            begun?;
            Ok::<MessageId, tokio_postgres::Error>(head?.get(0))
        };
        match began.await {
            Ok(first) => Ok((first..first + n).collect()),
            Err(e) => {
                // A connection that is still open must not stay in a failed transaction.
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e.into())
            }
        }
    }

    /// One position in the log for a change made in `tx` (a removal, an edit, a deletion), from
    /// the same row as the messages' (see `begin_log_batch`). Taken before anything else the
    /// transaction touches, as the writer takes it: one lock order. A rollback gives it back.
    pub(super) async fn take_log_position(
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<MessageId, StoreError> {
        Ok(tx
            .query_one(
                "UPDATE log_head SET next_position = next_position + 1 RETURNING next_position - 1",
                &[],
            )
            .await?
            .get(0))
    }

    /// Stores a batch of messages in one statement and commits the transaction `begin_log_batch`
    /// opened, message `i` with id `ids[i]`, each only if its sender is a member of its room.
    /// Returns, in the batch's order, each message as stored, or None for one not stored
    /// (`not_stored` says why). `Ok` means committed. (The senders' read pointers are moved after,
    /// off this transaction: `move_read_pointers`.)
    ///
    /// `client` is a connection the caller holds (see `Store::writer_connection`): statements sent
    /// on one connection without waiting run one after another, in the order sent.
    pub async fn insert_messages(
        client: &Object,
        batch: &[NewMessage],
        ids: &[MessageId],
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        let stmt = client
            .prepare_cached(&format!(
                "WITH input AS (
                    SELECT t.room, t.sender, t.content, t.client_id, t.id, t.reply_to,
                           t.mentions::int[] AS mentions, t.attachments::jsonb AS attachments,
                           t.file_names, t.thread_root
                    FROM unnest($1::int[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[],
                                $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[])
                         AS t(room, kind, sender, content, client_id, id, reply_to, mentions,
                              attachments, file_names, thread_root)
                    WHERE EXISTS (
                        SELECT 1 FROM chat_room_members mm JOIN chat_rooms r ON r.id = mm.chat_room_id
                        WHERE mm.chat_room_id = t.room AND mm.user_id = t.sender AND r.room_type = t.kind
                    )
                 ), ins AS (
                    INSERT INTO messages (id, chat_room_id, sender_id, content, client_id, reply_to,
                                          mentions, attachments, file_names, thread_root)
                    SELECT id, room, sender, content, client_id, reply_to, mentions, attachments,
                           file_names, thread_root
                    FROM input ORDER BY id
                    ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING
                    RETURNING id, chat_room_id, sender_id, content, created_at, client_id, reply_to,
                              edited_at, deleted_at, mentions, attachments, thread_root
                 )
                 SELECT {INSERTED_COLUMNS} FROM ins m"
            ))
            .await?;
        let columns = BatchColumns::of(batch, ids);
        let params = columns.params(&ids);
        // The COMMIT is sent right behind the insert, without waiting for its answer (requests on
        // one connection run in the order sent; after a failed insert COMMIT only rolls back): the
        // log's order lock is held one round trip less.
        let after = AfterInsert::prepare(client, &columns, ids).await?;
        let (rows, (), (), ()) = tokio::try_join!(
            async { client.query(&stmt, &params).await.map_err(StoreError::from) },
            attach_files(client, after.attach.as_ref(), &columns),
            count_replies(client, after.count.as_ref(), &after.replies),
            async {
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(StoreError::from)
            }
        )?;
        // Message `i` has id `ids[i]`: where each stored one goes, and who sent it.
        let first = ids.first().copied().unwrap_or_default();
        let mut stored: Vec<Option<StoredMessage>> = batch.iter().map(|_| None).collect();
        for row in &rows {
            let m = from_row(row);
            if let Some(i) = usize::try_from(m.id - first)
                .ok()
                .filter(|&i| i < batch.len())
            {
                stored[i] = Some(StoredMessage {
                    sender_username: Some(batch[i].sender_username.clone()),
                    sender_full_name: batch[i].sender_full_name.clone(),
                    ..m
                });
            }
        }
        Ok(stored)
    }

    /// A connection for moving read pointers (`move_read_pointers`), kept by its task. Its commits
    /// do not wait for the disk: a move lost in a crash only leaves a room's earlier messages
    /// unread for their sender.
    pub async fn read_pointer_connection(&self) -> Result<Object, StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(
                "SET synchronous_commit = off; SET application_name = 'rtchat-read-pointers'",
            )
            .await?;
        Ok(client)
    }

    /// Moves each `users[i]`'s read pointer in `rooms[i]` forward to `upto[i]` (never back).
    pub async fn move_read_pointers(
        client: &Object,
        rooms: &[RoomId],
        users: &[UserId],
        upto: &[MessageId],
    ) -> Result<(), StoreError> {
        let stmt = client
            .prepare_cached(
                "UPDATE chat_room_members mm SET last_read_message_id = v.upto
                 FROM unnest($1::int[], $2::int[], $3::bigint[]) AS v(room, member, upto)
                 WHERE mm.chat_room_id = v.room AND mm.user_id = v.member
                   AND mm.last_read_message_id < v.upto",
            )
            .await?;
        client.execute(&stmt, &[&rooms, &users, &upto]).await?;
        Ok(())
    }

    /// One outcome per message of a committed batch, given what `insert_messages` stored: a
    /// message not stored was a retry (its client_id is taken) or a non-member's. Only this rare
    /// path pays for finding out which.
    pub async fn not_stored(
        client: &Object,
        batch: &[NewMessage],
        stored: Vec<Option<StoredMessage>>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let retried: Vec<&NewMessage> = batch
            .iter()
            .zip(&stored)
            .filter(|(m, outcome)| outcome.is_none() && m.client_id.is_some())
            .map(|(m, _)| m)
            .collect();
        let mut earlier = std::collections::HashMap::new();
        if !retried.is_empty() {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                     WHERE (m.sender_id, m.client_id) IN (SELECT * FROM unnest($1::int[], $2::text[]))"
                ))
                .await?;
            let senders: Vec<UserId> = retried.iter().map(|m| m.sender_id).collect();
            let client_ids: Vec<&str> = retried
                .iter()
                .filter_map(|m| m.client_id.as_deref())
                .collect();
            for row in client.query(&stmt, &[&senders, &client_ids]).await? {
                let m = from_row(&row);
                earlier.insert((m.sender_id, m.client_id.clone()), m);
            }
        }
        Ok(batch
            .iter()
            .zip(stored)
            .map(|(msg, stored)| match stored {
                Some(m) => InsertOutcome::Stored(m),
                None => {
                    let key = (Some(msg.sender_id), msg.client_id.clone());
                    match earlier.get(&key) {
                        None => InsertOutcome::NotMember,
                        Some(m) if m.room_id == msg.room_id => InsertOutcome::Duplicate(m.clone()),
                        Some(_) => InsertOutcome::ClientIdReused,
                    }
                }
            })
            .collect())
    }

    /// Fills in the quote of the message each reply answers.
    pub async fn quote_replies(
        &self,
        messages: &mut [&mut StoredMessage],
    ) -> Result<(), StoreError> {
        let answered: Vec<MessageId> = messages
            .iter()
            .filter_map(|m| m.reply_to.as_ref().map(|r| r.message_id))
            .collect();
        if answered.is_empty() {
            return Ok(());
        }
        let quotes: std::collections::HashMap<MessageId, StoredMessage> = self
            .messages_by_id(&answered)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        for m in messages.iter_mut() {
            if let Some(reply) = &mut m.reply_to
                && let Some(quoted) = quotes.get(&reply.message_id)
            {
                reply.sender_username = quoted.sender_username.clone();
                // As long as MESSAGE_COLUMNS' `left(r.content, 80)`.
                reply.excerpt = quoted.content.chars().take(80).collect();
                reply.deleted = quoted.deleted;
            }
        }
        Ok(())
    }

    /// Those of `ids` that are stored, in id order.
    pub async fn messages_by_id(
        &self,
        ids: &[MessageId],
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                 WHERE m.id = ANY($1) ORDER BY m.id"
            ))
            .await?;
        Ok(client
            .query(&stmt, &[&ids])
            .await?
            .iter()
            .map(from_row)
            .collect())
    }

    /// One page of a room's history, oldest first.
    pub async fn history(
        &self,
        room_id: RoomId,
        page: HistoryPage,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.client().await?;
        let messages = match page {
            HistoryPage::Newest {
                before,
                offset,
                limit,
            } => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                         WHERE m.chat_room_id = $1 AND m.id < $2
                         ORDER BY m.id DESC LIMIT $3 OFFSET $4"
                    ))
                    .await?;
                let before = before.unwrap_or(MessageId::MAX);
                let mut page: Vec<StoredMessage> = client
                    .query(&stmt, &[&room_id, &before, &limit, &offset])
                    .await?
                    .iter()
                    .map(from_row)
                    .collect();
                page.reverse();
                page
            }
            HistoryPage::After {
                after,
                before,
                limit,
            } => {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                         WHERE m.chat_room_id = $1 AND m.id > $2 AND m.id < $3
                         ORDER BY m.id ASC LIMIT $4"
                    ))
                    .await?;
                let before = before.unwrap_or(MessageId::MAX);
                client
                    .query(&stmt, &[&room_id, &after, &before, &limit])
                    .await?
                    .iter()
                    .map(from_row)
                    .collect()
            }
        };
        Ok(messages)
    }

    /// Messages of every room `user` is in with an id above `since`, in id order, at most `limit`.
    /// Each room is read through its (room, id) index, not by scanning all messages after `since`.
    pub async fn messages_since(
        &self,
        user: UserId,
        since: MessageId,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS}
                 FROM chat_room_members mm
                 CROSS JOIN LATERAL (
                    SELECT * FROM messages x
                    WHERE x.chat_room_id = mm.chat_room_id AND x.id > $2
                    ORDER BY x.id LIMIT $3
                 ) m
                 {MESSAGE_JOINS}
                 WHERE mm.user_id = $1
                 ORDER BY m.id LIMIT $3"
            ))
            .await?;
        Ok(client
            .query(&stmt, &[&user, &since, &limit])
            .await?
            .iter()
            .map(from_row)
            .collect())
    }

    /// The newest settled position in the message log (0 when there is none): every position up
    /// to it is committed, a message, a removal or a position left empty.
    pub async fn max_message_id(&self) -> Result<MessageId, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one("SELECT next_position - 1 FROM log_head", &[])
            .await?
            .get(0))
    }

    /// Who follows thread `root` of `room`, but `sender`: members who wrote in it (its first
    /// message or a reply) and hear mentions there (not muted with `all`).
    pub async fn thread_followers(
        &self,
        room: RoomId,
        root: MessageId,
        sender: UserId,
    ) -> Result<Vec<UserId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT m.sender_id FROM messages m
                 JOIN chat_room_members mm ON mm.chat_room_id = $1 AND mm.user_id = m.sender_id
                 WHERE (m.id = $2 OR m.thread_root = $2) AND m.chat_room_id = $1
                   AND m.sender_id <> $3 AND m.deleted_at IS NULL
                   AND NOT (mm.mute_all AND mm.muted_until > now())",
            )
            .await?;
        Ok(client
            .query(&stmt, &[&room, &root, &sender])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// The room of message `id` and the first message of its thread.
    pub async fn thread_and_room(
        &self,
        id: MessageId,
    ) -> Result<Option<(RoomId, MessageId)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT chat_room_id, coalesce(thread_root, id) FROM messages WHERE id = $1",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&id])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    /// The first message of the thread message `id` of `room_id` is in (itself, unless it is a
    /// reply), or None when `id` is not in that room.
    pub async fn thread_of(
        &self,
        room_id: RoomId,
        id: MessageId,
    ) -> Result<Option<MessageId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT coalesce(thread_root, id) FROM messages WHERE id = $1 AND chat_room_id = $2",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&id, &room_id])
            .await?
            .map(|r| r.get(0)))
    }

    /// A thread: its first message and every reply after `after`, oldest first, at most `limit`.
    pub async fn thread(
        &self,
        root: MessageId,
        after: MessageId,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m {MESSAGE_JOINS}
                 WHERE m.id = $1
                    OR m.id IN (SELECT id FROM messages WHERE thread_root = $1 AND id > $2
                                ORDER BY id LIMIT $3)
                 ORDER BY m.id"
            ))
            .await?;
        Ok(client
            .query(&stmt, &[&root, &after, &limit])
            .await?
            .iter()
            .map(from_row)
            .collect())
    }

    /// The id of message `id` if it is in `room_id`, or the room's newest message id when `id` is
    /// None (0 for an empty room).
    pub async fn message_in_room(
        &self,
        room_id: RoomId,
        id: Option<MessageId>,
    ) -> Result<Option<MessageId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT CASE WHEN $2::bigint IS NULL
                             THEN coalesce((SELECT max(id) FROM messages WHERE chat_room_id = $1), 0)
                             ELSE (SELECT id FROM messages WHERE id = $2 AND chat_room_id = $1) END",
            )
            .await?;
        Ok(client.query_one(&stmt, &[&room_id, &id]).await?.get(0))
    }
}
