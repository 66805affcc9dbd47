//! The `groups` commands about a group's settings and roles, and public groups: `browse`,
//! `join`, `topic`, `rename`, `promote`, `demote`, `hand-over`.

use clap::Subcommand;

use super::api::Api;
use super::error::CliError;
use super::output::{Out, out};
use super::render::{group, group_with_id, person, table};
use super::target;
use crate::proto::RoomId;
use crate::proto::team::{PublicGroup, UpdateGroupRequest};

#[derive(Debug, Subcommand)]
pub enum GroupSettingsCommand {
    /// Public groups anyone on the server may join, with member counts and topics.
    #[command(after_help = "Example:\n  rtchat groups browse")]
    Browse,
    /// Join a public group.
    #[command(after_help = "Example:\n  rtchat groups join '#general'")]
    Join { group: String },
    /// Set a group's topic ('' clears it; its owner and admins).
    #[command(after_help = "Example:\n  rtchat groups topic '#ops' 'deploys and incidents'")]
    Topic {
        group: String,
        /// The topic: the remaining words, joined by spaces.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Rename a group (its owner and admins).
    #[command(after_help = "Example:\n  rtchat groups rename '#ops' platform")]
    Rename { group: String, name: String },
    /// Make a member an admin of the group (its owner only).
    #[command(after_help = "Example:\n  rtchat groups promote '#ops' @bob")]
    Promote { group: String, user: String },
    /// Make an admin of the group a plain member again (its owner only).
    #[command(after_help = "Example:\n  rtchat groups demote '#ops' @bob")]
    Demote { group: String, user: String },
    /// Hand the group to another member (its owner only); you stay as an admin.
    #[command(after_help = "Example:\n  rtchat groups hand-over '#ops' @bob")]
    HandOver { group: String, user: String },
}

pub(super) async fn run(api: &Api, out: &Out, cmd: GroupSettingsCommand) -> Result<(), CliError> {
    match cmd {
        GroupSettingsCommand::Browse => browse(api, out).await?,
        GroupSettingsCommand::Join { group: g } => {
            let found = public_group(api, &g).await?;
            let reply = api.join_group(found.id).await?;
            out.done(
                &reply,
                format_args!("joined {}", group_with_id(&found.name, found.id)),
            );
        }
        GroupSettingsCommand::Topic { group: g, text } => {
            let (id, name) = target::resolve_group(api, &g).await?;
            let topic = text.join(" ");
            let change = UpdateGroupRequest {
                topic: Some(topic.clone()),
                ..Default::default()
            };
            let summary = api.update_group(id, &change).await?;
            if topic.trim().is_empty() {
                out.done(&summary, format_args!("{} has no topic now", group(&name)));
            } else {
                out.done(&summary, format_args!("topic of {}: {topic}", group(&name)));
            }
        }
        GroupSettingsCommand::Rename { group: g, name } => {
            let (id, old) = target::resolve_group(api, &g).await?;
            let change = UpdateGroupRequest {
                name: Some(name),
                ..Default::default()
            };
            let summary = api.update_group(id, &change).await?;
            let (was, now) = (group(&old), group_with_id(&summary.name, id));
            out.done(&summary, format_args!("renamed {was} to {now}"));
        }
        GroupSettingsCommand::Promote { group: g, user } => {
            set_admin(api, out, &g, &user, true).await?
        }
        GroupSettingsCommand::Demote { group: g, user } => {
            set_admin(api, out, &g, &user, false).await?
        }
        GroupSettingsCommand::HandOver { group: g, user } => {
            let (id, name) = target::resolve_group(api, &g).await?;
            let user = target::resolve_user(api, &user).await?;
            let reply = api.hand_over_group(id, user.id).await?;
            let (who, of) = (person(&user.username), group(&name));
            out.done(
                &reply,
                format_args!("{who} owns {of} now; you are one of its admins"),
            );
        }
    }
    Ok(())
}

async fn set_admin(api: &Api, out: &Out, g: &str, user: &str, admin: bool) -> Result<(), CliError> {
    let (id, name) = target::resolve_group(api, g).await?;
    let user = target::resolve_user(api, user).await?;
    let reply = api.set_group_admin(id, user.id, admin).await?;
    let (who, of) = (person(&user.username), group(&name));
    if admin {
        out.done(&reply, format_args!("{who} is an admin of {of}"));
    } else {
        out.done(&reply, format_args!("{who} is no longer an admin of {of}"));
    }
    Ok(())
}

async fn browse(api: &Api, out: &Out) -> Result<(), CliError> {
    let groups = api.public_groups().await?;
    if out.json {
        groups.iter().for_each(|g| out.line(g));
        return Ok(());
    }
    if groups.is_empty() {
        eprintln!("No public groups yet: `rtchat groups create NAME --public` makes one");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                out.style.bold(&group_with_id(&g.name, g.id)),
                format!(
                    "{} member{}",
                    g.member_count,
                    if g.member_count == 1 { "" } else { "s" }
                ),
                if g.is_member {
                    "joined".into()
                } else {
                    String::new()
                },
                g.topic.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out!("{}", table(&rows));
    Ok(())
}

/// A public group by `#id` or `#name` (a private one is not found, as the server would say).
async fn public_group(api: &Api, text: &str) -> Result<PublicGroup, CliError> {
    let wanted = text.strip_prefix('#').unwrap_or(text);
    let groups = api.public_groups().await?;
    let by_id = wanted
        .parse::<RoomId>()
        .ok()
        .and_then(|id| groups.iter().find(|g| g.id == id));
    if let Some(g) = by_id {
        return Ok(g.clone());
    }
    let named: Vec<&PublicGroup> = groups
        .iter()
        .filter(|g| g.name.eq_ignore_ascii_case(wanted))
        .collect();
    match named.as_slice() {
        [] => Err(CliError::NotFound(format!(
            "no public group {text} (`rtchat groups browse` lists them)"
        ))),
        [g] => Ok((*g).clone()),
        many => Err(CliError::Usage(format!(
            "{text} names {} public groups: {}; use the number",
            many.len(),
            many.iter()
                .map(|g| group_with_id(&g.name, g.id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
