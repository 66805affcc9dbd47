//! Full-text search over the messages of a user's rooms (`messages.search`, a 'simple' tsvector
//! with a GIN index): language-neutral, newest first, paged by id.

use super::messages::{MESSAGE_COLUMNS, MESSAGE_JOINS, from_row};
use super::{Store, StoreError, StoredMessage};
use crate::proto::{MessageId, RoomId, UserId};

/// One page of a search.
#[derive(Debug, Clone)]
pub struct MessageSearch {
    /// Words, "a phrase", -excluded, or (web search syntax, never a syntax error).
    pub text: String,
    /// Only this room (which must be the user's).
    pub room: Option<RoomId>,
    /// Only messages older than this id (the previous page's last).
    pub before: Option<MessageId>,
    pub limit: i64,
}

impl Store {
    /// Messages of rooms `user` is in now that match, newest first. A room the user left, and a
    /// deleted message (its text is gone), match nothing.
    pub async fn search(
        &self,
        user: UserId,
        query: &MessageSearch,
        deadline: std::time::Duration,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut client = self.client().await?;
        // Planned for these values every time, not cached: how common the words are decides the
        // plan. A common word is found fastest walking messages newest first; a rare one through
        // the full-text index. A generic plan picks one for all (measured: 485 ms instead of 1 ms
        // for a word in a third of 1,000,000 messages).
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}
                 FROM messages m
                 JOIN chat_room_members mm ON mm.chat_room_id = m.chat_room_id AND mm.user_id = $1
                 {MESSAGE_JOINS}
                 WHERE m.search @@ websearch_to_tsquery('simple', $2)
                   AND ($3::int IS NULL OR m.chat_room_id = $3)
                   AND m.id < $4
                 ORDER BY m.id DESC LIMIT $5"
        );
        let before = query.before.unwrap_or(MessageId::MAX);
        let text = search_terms(&query.text);
        // A search has a deadline of its own: one costly query must not hold a connection (and
        // the others' history and sends) for long.
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL plan_cache_mode = force_custom_plan",
            deadline.as_millis().max(1)
        ))
        .await?;
        let rows = tx
            .query(&sql, &[&user, &text, &query.room, &before, &query.limit])
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
                    StoreError::Cancelled
                } else {
                    e.into()
                }
            })?;
        tx.commit().await?;
        Ok(rows.iter().map(from_row).collect())
    }
}

/// Most terms a search keeps: more make no better search, and PostgreSQL's query parser has a
/// bounded stack (33 `-` in a row were "tsquery stack too small", a 500).
const MAX_TERMS: usize = 16;

/// The search text rewritten in the web-search syntax `websearch_to_tsquery` reads, keeping only
/// what can match: words, "quoted phrases", `-word` to leave out, and `or`. Terms without a letter
/// or digit (`---`, `-`, `"`) match nothing and are dropped; at most `MAX_TERMS` are kept.
pub fn search_terms(text: &str) -> String {
    let has_word = |t: &str| t.chars().any(char::is_alphanumeric);
    let mut terms: Vec<String> = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() && terms.len() < MAX_TERMS {
        let negated = rest.starts_with('-');
        let body = rest.trim_start_matches('-');
        let (term, after) = if let Some(quoted) = body.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let phrase = quoted[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let after = quoted.get(end + 1..).unwrap_or("");
            (has_word(&phrase).then(|| format!("\"{phrase}\"")), after)
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            let word = body[..end].trim_matches('"');
            (has_word(word).then(|| word.to_string()), &body[end..])
        };
        if let Some(term) = term {
            let is_or = term.eq_ignore_ascii_case("or");
            // `or` joins two terms: never first, never after another `or` or a `-`.
            let joins = terms.last().is_some_and(|t| !t.eq_ignore_ascii_case("or"));
            if !is_or || (joins && !negated) {
                terms.push(if negated { format!("-{term}") } else { term });
            }
        }
        rest = after.trim_start();
    }
    if terms.last().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
        terms.pop();
    }
    terms.join(" ")
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn terms_keep_words_phrases_exclusions_and_or() {
        assert_eq!(search_terms("deploy friday"), "deploy friday");
        assert_eq!(
            search_terms("\"build is  green\" -red"),
            "\"build is green\" -red"
        );
        assert_eq!(search_terms("a or b"), "a or b");
        assert_eq!(search_terms("--deploy"), "-deploy");
    }

    #[test]
    fn terms_that_match_nothing_are_dropped() {
        assert_eq!(search_terms(&"-".repeat(40)), "");
        assert_eq!(search_terms(&"- ".repeat(100)), "");
        assert_eq!(search_terms("or or deploy or"), "deploy");
        assert_eq!(search_terms("\" \" \"\""), "");
        assert_eq!(
            search_terms("x ".repeat(100).as_str()).split(' ').count(),
            16
        );
    }
}
