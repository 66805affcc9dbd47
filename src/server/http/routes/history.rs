//! Reading a page of a room's history, shared by the direct and group routes: the page, then the
//! reader's read pointer moved past it, then each message's `is_read` as the reader now sees it.

use crate::proto::{Message, MessageId, MessageWithSender, RoomId, UserId};
use crate::server::commands::ApiError;
use crate::server::commands::validate::HistoryQuery;
use crate::server::state::{AppState, CurrentUser};
use crate::server::store::{HistoryPage, RoomAccess, StoredMessage};

pub const DEFAULT_PAGE: i64 = 50;

fn page_of(q: &HistoryQuery) -> HistoryPage {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    match q.after_id {
        Some(after) => HistoryPage::After {
            after,
            before: q.before_id,
            limit,
        },
        None => HistoryPage::Newest {
            before: q.before_id,
            offset: q.offset.unwrap_or(0),
            limit,
        },
    }
}

pub async fn read_page(
    state: &AppState,
    me: &CurrentUser,
    room_id: RoomId,
    access: &RoomAccess,
    query: &HistoryQuery,
) -> Result<Vec<MessageWithSender>, ApiError> {
    let reader = me.id();
    let page = state.store.history(room_id, page_of(query)).await?;
    let mut last_read = access.last_read;
    if let Some(newest) = page.last().map(|m| m.id)
        && newest > last_read
        && let Some(read) = state
            .messaging()
            .mark_read(reader, &me.user.username, room_id, newest)
            .await?
    {
        last_read = read.last_read;
    }
    Ok(page
        .into_iter()
        .map(|m| with_sender(m, reader, last_read, access.others_last_read))
        .collect())
}

/// A stored message as `reader` sees it. `client_id` is shown to everyone, as on the WebSocket: it
/// is an opaque retry key, of no use to anyone but its sender.
pub fn to_message(
    m: &StoredMessage,
    reader: UserId,
    reader_last_read: MessageId,
    others_last_read: MessageId,
) -> Message {
    let own = m.sender_id == Some(reader);
    Message {
        id: m.id,
        chat_room_id: m.room_id,
        sender_id: m.sender_id,
        content: m.content.clone(),
        is_read: if own {
            m.id <= others_last_read
        } else {
            m.id <= reader_last_read
        },
        created_at: m.created_at.into(),
        client_id: m.client_id.clone(),
        reply_to: m.reply_to.clone(),
        edited_at: m.edited_at.map(Into::into),
        deleted: m.deleted,
        mention: m.names(reader),
        attachments: m.attachments.clone(),
        reactions: crate::server::store::as_seen_by(&m.reactions, reader),
        thread_root: m.thread_root,
        thread: m.thread.clone(),
    }
}

pub fn with_sender(
    m: StoredMessage,
    reader: UserId,
    reader_last_read: MessageId,
    others_last_read: MessageId,
) -> MessageWithSender {
    MessageWithSender {
        message: to_message(&m, reader, reader_last_read, others_last_read),
        sender_username: m.sender_username,
        sender_full_name: m.sender_full_name,
    }
}
