//! Input rules, the same for every route and WebSocket frame that takes the field: what a username,
//! email, password, message, group name, `client_id` or history query may be.

use serde::Deserialize;
use serde_json::Value;

use crate::proto::team::{
    CreateBotRequest, CreateInviteRequest, CreateTokenRequest, CreateWebhookRequest,
    GroupMemberRequest, ResetPasswordRequest, RevokeInviteRequest, SetRoleRequest,
    UpdateGroupRequest, WebhookPost,
};
use crate::proto::{
    AddMembersRequest, ChangePasswordRequest, CreateGroupRequest, EditRequest, FieldError,
    LoginRequest, MarkReadRequest, MessageId, RefreshRequest, RegisterRequest, RemoveMemberRequest,
    RoomId, SendDirectRequest, SendGroupRequest, UpdateProfileRequest,
};

pub use crate::proto::MAX_MESSAGE_CHARS;
pub const MAX_CLIENT_ID_CHARS: usize = 100;
pub const MAX_GROUP_MEMBERS_PER_REQUEST: usize = 1000;

/// Request-specific rules checked after the shape is right (lengths, formats).
pub trait Validate {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Collects field errors in pydantic's shape.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, kind: &str, field: &str, msg: impl Into<String>, input: impl Into<Value>) {
        self.0.push(FieldError {
            kind: kind.into(),
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            input: input.into(),
        });
    }

    /// Between `min` and `max` characters, and no NUL (PostgreSQL text cannot hold one).
    fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if value.contains('\0') {
            self.push(
                "string_nul",
                field,
                "String must not contain NUL (\\u0000) characters",
                truncated(value),
            );
        } else if n < min {
            self.push(
                "string_too_short",
                field,
                format!("String should have at least {min} character{}", plural(min)),
                value,
            );
        } else if n > max {
            self.push(
                "string_too_long",
                field,
                format!("String should have at most {max} characters"),
                truncated(value),
            );
        }
    }
}

impl Errors {
    /// Text that is there but only spaces: `what` must not be blank.
    fn not_blank(&mut self, field: &str, value: &str, what: &str) {
        if !value.is_empty() && value.trim().is_empty() {
            self.push(
                "string_blank",
                field,
                format!("{what} must not be blank"),
                value,
            );
        }
    }

    /// A page size, when given, from 1 to `max`.
    fn limit(&mut self, value: Option<i64>, max: i64) {
        if let Some(limit) = value
            && !(1..=max).contains(&limit)
        {
            self.push(
                "limit_range",
                "limit",
                format!("Input should be between 1 and {max}"),
                limit,
            );
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Echo at most a little of a long input back.
fn truncated(value: &str) -> String {
    value.chars().take(100).collect()
}

fn username(errors: &mut Errors, field: &str, value: &str) {
    errors.length(field, value, 3, 50);
    if !value.is_empty()
        && !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        errors.push(
            "string_pattern_mismatch",
            field,
            "Username may contain only letters, digits, '_', '.' and '-'",
            truncated(value),
        );
    }
}

fn password(errors: &mut Errors, field: &str, value: &str) {
    errors.length(field, value, 8, 100);
    // bcrypt reads only the first 72 bytes; a longer password would be silently cut (S13).
    if value.len() > 72 && value.chars().count() <= 100 {
        errors.push(
            "string_too_long",
            field,
            "Password must be at most 72 bytes (bcrypt ignores the rest)",
            "",
        );
    }
}

pub fn content(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    let mut e = Errors(std::mem::take(errors));
    e.length(field, value, 1, MAX_MESSAGE_CHARS);
    e.not_blank(field, value, "Message");
    *errors = e.0;
}

/// Most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// A message's text and files: text may be empty when there are files, at most
/// `MAX_ATTACHMENTS` of them, each once.
pub fn message_body(errors: &mut Vec<FieldError>, field: &str, text: &str, files: &[i64]) {
    if files.is_empty() || !text.is_empty() {
        content(errors, field, text);
    }
    let mut e = Errors(std::mem::take(errors));
    if files.len() > MAX_ATTACHMENTS {
        e.push(
            "too_long",
            "attachments",
            format!("A message carries at most {MAX_ATTACHMENTS} files"),
            Value::Array(vec![]),
        );
    }
    let mut seen = std::collections::HashSet::new();
    if !files.iter().all(|id| seen.insert(id)) {
        e.push(
            "value_error",
            "attachments",
            "Each file is attached once",
            Value::Array(vec![]),
        );
    }
    *errors = e.0;
}

/// A send's `client_id`, over REST and WebSocket alike.
pub fn client_id(errors: &mut Vec<FieldError>, value: Option<&str>) {
    if let Some(v) = value {
        let mut e = Errors(std::mem::take(errors));
        e.length("client_id", v, 1, MAX_CLIENT_ID_CHARS);
        *errors = e.0;
    }
}

fn ids(errors: &mut Errors, field: &str, values: &[i32], min: usize) {
    if values.len() < min {
        errors.push(
            "too_short",
            field,
            format!("List should have at least {min} item after validation"),
            Value::Array(vec![]),
        );
    }
    if values.len() > MAX_GROUP_MEMBERS_PER_REQUEST {
        errors.push(
            "too_long",
            field,
            format!("List should have at most {MAX_GROUP_MEMBERS_PER_REQUEST} items"),
            Value::Null,
        );
    }
}

/// The email with its domain lowercased (as the seed's validator did); None if it is not an address.
pub fn normalise_email(email: &str) -> Option<String> {
    if email.len() > 225 || !email_address::EmailAddress::is_valid(email) {
        return None;
    }
    let (local, domain) = email.rsplit_once('@')?;
    if !domain.contains('.') {
        return None;
    }
    Some(format!("{local}@{}", domain.to_ascii_lowercase()))
}

impl Validate for RegisterRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        username(&mut e, "username", &self.username);
        if normalise_email(&self.email).is_none() {
            e.push(
                "value_error",
                "email",
                "value is not a valid email address",
                truncated(&self.email),
            );
        }
        password(&mut e, "password", &self.password);
        if let Some(name) = &self.full_name {
            e.length("full_name", name, 0, 100);
        }
        if let Some(code) = &self.invite {
            e.length("invite", code, 0, 200);
        }
        e.0
    }
}

impl Validate for LoginRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("username", &self.username, 1, 225);
        e.length("password", &self.password, 1, 100);
        e.0
    }
}

impl Validate for RefreshRequest {}

impl Validate for UpdateProfileRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(name) = &self.full_name {
            e.length("full_name", name, 0, 100);
        }
        if let Some(email) = &self.email
            && normalise_email(email).is_none()
        {
            e.push(
                "value_error",
                "email",
                "value is not a valid email address",
                truncated(email),
            );
        }
        if let Some(password) = &self.current_password {
            e.length("current_password", password, 1, 100);
        }
        e.0
    }
}

impl Validate for ChangePasswordRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("old_password", &self.old_password, 1, 100);
        password(&mut e, "new_password", &self.new_password);
        e.0
    }
}

impl Validate for ResetPasswordRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("code", &self.code, 1, 200);
        password(&mut e, "new_password", &self.new_password);
        e.0
    }
}

/// The longest an invite or token may be asked to live: a year, in seconds.
pub const MAX_SECRET_LIFETIME_SECONDS: i64 = 366 * 24 * 3600;

impl Errors {
    /// A lifetime in seconds, when given: a minute to a year.
    fn lifetime(&mut self, field: &str, value: Option<i64>) {
        if let Some(seconds) = value
            && !(60..=MAX_SECRET_LIFETIME_SECONDS).contains(&seconds)
        {
            self.push(
                "lifetime_range",
                field,
                "Input should be between 60 seconds and a year",
                seconds,
            );
        }
    }
}

impl Validate for CreateInviteRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(uses) = self.max_uses
            && !(1..=1000).contains(&uses)
        {
            e.push(
                "uses_range",
                "max_uses",
                "Input should be between 1 and 1000",
                uses,
            );
        }
        e.lifetime("expires_in_seconds", self.expires_in_seconds);
        e.0
    }
}

impl Validate for SetRoleRequest {}

impl Validate for RevokeInviteRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        match (&self.id, &self.code) {
            (None, None) | (Some(_), Some(_)) => e.push(
                "missing",
                "id",
                "Give the invite's id or its code (one of them)",
                Value::Null,
            ),
            (_, Some(code)) => e.length("code", code, 1, 200),
            _ => {}
        }
        e.0
    }
}

impl Validate for CreateTokenRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("name", &self.name, 1, 64);
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            e.push(
                "string_pattern_mismatch",
                "name",
                "A token's name may contain only letters, digits, '_', '.' and '-'",
                truncated(&self.name),
            );
        }
        e.lifetime("expires_in_seconds", self.expires_in_seconds);
        e.0
    }
}

impl Validate for CreateBotRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        username(&mut e, "username", &self.username);
        if let Some(name) = &self.full_name {
            e.length("full_name", name, 0, 100);
        }
        e.0
    }
}

impl Validate for CreateWebhookRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(name) = &self.name {
            username(&mut e, "name", name);
        }
        e.0
    }
}

impl Validate for WebhookPost {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        content(&mut errors, "text", &self.text);
        errors
    }
}

impl Validate for SendDirectRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        message_body(&mut e.0, "content", &self.content, &self.attachments);
        client_id(&mut e.0, self.client_id.as_deref());
        e.0
    }
}

impl Validate for SendGroupRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        message_body(&mut e.0, "content", &self.content, &self.attachments);
        client_id(&mut e.0, self.client_id.as_deref());
        e.0
    }
}

impl Validate for EditRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        content(&mut e.0, "content", &self.content);
        e.0
    }
}

impl Validate for crate::proto::MuteRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(s) = self.seconds
            && !(1..=366 * 24 * 3600).contains(&s)
        {
            e.push(
                "value_error",
                "seconds",
                "A mute lasts from a second to a year (or, without seconds, until unmuted)",
                s,
            );
        }
        e.0
    }
}

/// `GET /messages/{id}/thread`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// Replies in the answer, 1 to 500 (default 500).
    pub limit: Option<i64>,
    /// Only replies after this one (the previous answer's last).
    pub after_id: Option<MessageId>,
}

impl Validate for ThreadQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.limit(self.limit, 500);
        e.0
    }
}

/// Longest reaction, in characters (an emoji with skin tone and joiners is several).
pub const MAX_EMOJI_CHARS: usize = 16;

impl Validate for crate::proto::ReactRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("emoji", &self.emoji, 1, MAX_EMOJI_CHARS);
        if self
            .emoji
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            e.push(
                "value_error",
                "emoji",
                "An emoji has no spaces",
                self.emoji.clone(),
            );
        }
        e.0
    }
}

/// `POST /files`: the file's name (its last path component is kept, made safe).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, e.g. `report.pdf` (default `file`).
    pub name: Option<String>,
}

impl Validate for UploadQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(name) = &self.name {
            e.length("name", name, 1, 1000);
        }
        e.0
    }
}

/// `GET /search`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageSearchQuery {
    /// Words to find (all of them), "a phrase", or -a word to leave out; 1 to 200 characters.
    pub q: String,
    /// Only this room (one of yours).
    pub room_id: Option<RoomId>,
    /// Only messages older than this id: the previous page's `next_before`.
    pub before: Option<MessageId>,
    /// Results in the page, 1 to 100 (default 20).
    pub limit: Option<i64>,
}

impl Validate for MessageSearchQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("q", &self.q, 1, 200);
        e.not_blank("q", &self.q, "Search text");
        e.limit(self.limit, 100);
        e.0
    }
}

impl Validate for CreateGroupRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("name", &self.name, 1, 100);
        e.not_blank("name", &self.name, "Group name");
        ids(&mut e, "member_ids", &self.member_ids, 0);
        e.0
    }
}

impl Validate for UpdateGroupRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if let Some(name) = &self.name {
            e.length("name", name, 1, 100);
            e.not_blank("name", name, "Group name");
        }
        if let Some(topic) = &self.topic {
            e.length("topic", topic, 0, 250);
        }
        e.0
    }
}

impl Validate for GroupMemberRequest {}

impl Validate for AddMembersRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        ids(&mut e, "user_ids", &self.user_ids, 1);
        e.0
    }
}

impl Validate for RemoveMemberRequest {}

impl Validate for MarkReadRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        if self.message_id.is_some_and(|id| id < 0) {
            e.push(
                "greater_than_equal",
                "message_id",
                "Input should be greater than or equal to 0",
                self.message_id,
            );
        }
        e.0
    }
}

/// `?limit=&offset=` (the seed's paging) and `?before_id=` / `?after_id=` (cursors, stable while
/// messages arrive).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages in the page, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// Skip this many of the newest (the seed's paging; prefer `before_id`).
    pub offset: Option<i64>,
    /// The page just older than this message (newest first among those, returned oldest first).
    pub before_id: Option<MessageId>,
    /// The page just newer than this message.
    pub after_id: Option<MessageId>,
}

impl Validate for HistoryQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.limit(self.limit, 100);
        if self.offset.is_some_and(|o| o < 0) {
            e.push(
                "greater_than_equal",
                "offset",
                "Input should be greater than or equal to 0",
                self.offset,
            );
        }
        for (name, v) in [("before_id", self.before_id), ("after_id", self.after_id)] {
            if v.is_some_and(|v| v < 0) {
                e.push(
                    "greater_than_equal",
                    name,
                    "Input should be greater than or equal to 0",
                    v,
                );
            }
        }
        if self.offset.is_some_and(|o| o > 0)
            && (self.before_id.is_some() || self.after_id.is_some())
        {
            e.push(
                "value_error",
                "offset",
                "offset cannot be combined with before_id or after_id",
                self.offset,
            );
        }
        e.0
    }
}

/// `?q=` name prefix and `?limit=`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The start of a username or full name, 1 to 50 characters.
    #[serde(default)]
    pub q: String,
    /// At most this many people, 1 to 50 (default 20).
    pub limit: Option<i64>,
}

pub const MAX_SEARCH_RESULTS: i64 = 50;

impl Validate for SearchQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.length("q", &self.q, 1, 50);
        e.limit(self.limit, MAX_SEARCH_RESULTS);
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let check = |u: &str| {
            let mut e = Errors::default();
            username(&mut e, "username", u);
            e.0.is_empty()
        };
        assert!(check("alice"));
        assert!(check("bob_smith-2.0"));
        assert!(!check("al"));
        assert!(!check("      "));
        assert!(!check("a@b.c"));
        assert!(!check(&"x".repeat(51)));
    }

    #[test]
    fn passwords_over_72_bytes_are_refused_not_cut() {
        let mut e = Errors::default();
        password(&mut e, "password", &"é".repeat(40)); // 40 chars, 80 bytes
        assert_eq!(e.0.len(), 1);
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalise_email("Bob@Example.COM").as_deref(),
            Some("Bob@example.com")
        );
        assert!(normalise_email("not-an-email").is_none());
        assert!(normalise_email("a@localhost").is_none());
    }

    #[test]
    fn blank_content_is_refused() {
        let mut e = Vec::new();
        content(&mut e, "content", "   ");
        assert_eq!(e[0].kind, "string_blank");
    }
}

/// `GET /admin/log`: a page of the audit log, newest first.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Lines in the page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// Only lines older than this one (the next page).
    pub before_id: Option<i64>,
}

impl Validate for AuditQuery {
    fn validate(&self) -> Vec<FieldError> {
        let mut e = Errors::default();
        e.limit(self.limit, 500);
        e.0
    }
}
