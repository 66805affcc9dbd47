//! Naming people and groups the way users do: `@alice` (or `alice`) for a person, `#3` or `#team`
//! for a group. Nobody needs to know a numeric user id.

use super::api::Api;
use super::error::CliError;
use crate::proto::{PublicUser, RoomId};

#[derive(Debug, Clone)]
pub enum Target {
    User(PublicUser),
    Group { id: RoomId, name: String },
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::User(u) => format!("@{}", u.username),
            Target::Group { name, .. } => format!("#{name}"),
        }
    }
}

/// `@alice` or `alice` -> "alice"; a `#group` is not a user.
pub fn user_name(text: &str) -> Result<&str, CliError> {
    if text.starts_with('#') {
        return Err(CliError::Usage(format!(
            "{text} is a group; expected a user like @alice"
        )));
    }
    let name = text.strip_prefix('@').unwrap_or(text);
    if name.is_empty() {
        return Err(CliError::Usage("expected a user like @alice".into()));
    }
    Ok(name)
}

pub async fn resolve_user(api: &Api, text: &str) -> Result<PublicUser, CliError> {
    api.user(user_name(text)?).await
}

/// A group of yours, by `#id` or `#name` (a name shared by several groups is an error that lists them).
pub async fn resolve_group(api: &Api, text: &str) -> Result<(RoomId, String), CliError> {
    let Some(wanted) = text.strip_prefix('#') else {
        return Err(CliError::Usage(format!(
            "{text} is not a group; expected #id or #name"
        )));
    };
    let groups = api.groups().await?;
    if let Ok(id) = wanted.parse::<RoomId>()
        && let Some(g) = groups.iter().find(|g| g.id == id)
    {
        return Ok((g.id, g.name.clone()));
    }
    let matches: Vec<_> = groups
        .iter()
        .filter(|g| g.name.eq_ignore_ascii_case(wanted))
        .collect();
    match matches.as_slice() {
        [] => Err(CliError::NotFound(format!("you are in no group {text}"))),
        [g] => Ok((g.id, g.name.clone())),
        many => Err(CliError::Usage(format!(
            "{text} names {} groups: {}; use the number",
            many.len(),
            many.iter()
                .map(|g| format!("#{} ({})", g.id, g.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub async fn resolve(api: &Api, text: &str) -> Result<Target, CliError> {
    if text.starts_with('#') {
        let (id, name) = resolve_group(api, text).await?;
        Ok(Target::Group { id, name })
    } else {
        Ok(Target::User(resolve_user(api, text).await?))
    }
}

/// The room a target's messages live in: a group's id, or the direct chat with a person.
pub async fn room_of(api: &Api, target: &Target) -> Result<Option<RoomId>, CliError> {
    match target {
        Target::Group { id, .. } => Ok(Some(*id)),
        Target::User(u) => Ok(api
            .chats()
            .await?
            .into_iter()
            .find(|c| c.other_user_id == u.id)
            .map(|c| c.chat_room_id)),
    }
}
