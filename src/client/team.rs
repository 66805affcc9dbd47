//! The commands of a server a team runs: `invite`, `reset-password`, `admin ...`,
//! `tokens ...` and `webhooks ...`, in human form or as JSON.

use clap::{Args, Subcommand};
use serde_json::json;

use super::api::Api;
use super::error::CliError;
use super::output::{Out, out, outln};
use super::password;
use super::render::{listed_person, person, table, when};
use super::target;
use crate::proto::ServerRole;
use crate::proto::team::CreateInviteRequest;

#[derive(Debug, Args)]
pub struct InviteArgs {
    #[command(subcommand)]
    action: Option<InviteAction>,
    /// How many accounts the code may create.
    #[arg(long, default_value_t = 1)]
    uses: i32,
    /// How long the code works: 30m, 12h, 7d (at most a year).
    #[arg(long, default_value = "7d", value_parser = lifetime)]
    expires: i64,
}

#[derive(Debug, Subcommand)]
enum InviteAction {
    /// Your invites (an admin sees everybody's), newest first.
    List,
    /// Revoke an invite by its number (as listed) or its code.
    Revoke { invite: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Every account: role, active or not, bot or not, when last seen.
    Users,
    /// Deactivate an account: its sessions end and its sockets close at once; messages stay.
    Deactivate { user: String },
    /// Let a deactivated account log in again.
    Reactivate { user: String },
    /// Print a one-time code (valid an hour) for `rtchat reset-password --code CODE`.
    ResetPassword { user: String },
    /// Make someone an admin (owners only; --owner makes an owner).
    Promote {
        user: String,
        #[arg(long)]
        owner: bool,
    },
    /// Make an admin or owner a member again (owners only).
    Demote { user: String },
    /// Create a bot account (tokens only, no password); prints its first token.
    CreateBot {
        name: String,
        #[arg(long)]
        full_name: Option<String>,
    },
    /// The audit log: who did what to whom, when (newest first).
    Log {
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: u32,
        /// Only lines older than this one (the next page).
        #[arg(long)]
        before: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token (shown once): use it as `Authorization: Bearer TOKEN` or RTCHAT_TOKEN.
    Create {
        /// A name to know it by (letters, digits, '_', '.', '-').
        name: String,
        /// How long it works: 30d, 90d (at most a year); none: until revoked.
        #[arg(long, value_parser = lifetime)]
        expires: Option<i64>,
    },
    /// Your tokens (names and expiry, never the tokens).
    List,
    /// Revoke a token: it stops working at once and its connections close.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// A webhook for a group of yours (its admin): prints the URL to POST {"text": "..."} to.
    Create {
        group: String,
        /// The sender name its messages carry (default: GROUP-hook).
        #[arg(long)]
        name: Option<String>,
    },
    /// The webhooks of your groups.
    List,
    /// Revoke a webhook by its number (as listed): its URL stops working.
    Revoke { id: i32 },
}

/// `30m`, `12h`, `7d` as seconds.
fn lifetime(text: &str) -> Result<i64, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 12h, 7d, 90d)"))?;
    i64::try_from(duration.as_secs()).map_err(|e| e.to_string())
}

pub(super) async fn invite(api: &Api, out: &Out, args: InviteArgs) -> Result<(), CliError> {
    match args.action {
        None => {
            let request = CreateInviteRequest {
                max_uses: Some(args.uses),
                expires_in_seconds: Some(args.expires),
            };
            let invite = api.create_invite(&request).await?;
            let code = invite.code.clone().unwrap_or_default();
            let line = format!(
                "rtchat register NAME --email EMAIL --invite {code} --server {}",
                api.base()
            );
            if out.json {
                out.line(&json!({"invite": invite, "register": line}));
            } else {
                let uses = match invite.max_uses {
                    1 => "single use".to_string(),
                    n => format!("{n} uses"),
                };
                eprintln!(
                    "Invite {} ({uses}, until {}):",
                    invite.id,
                    when(&invite.expires_at)
                );
                outln!("{code}");
                eprintln!("Your teammate runs:\n  {line}");
            }
        }
        Some(InviteAction::List) => {
            let invites = api.invites().await?;
            if out.json {
                invites.iter().for_each(|i| out.line(i));
            } else if invites.is_empty() {
                eprintln!("No invites yet: `rtchat invite` makes one");
            } else {
                let mut rows = vec![vec![
                    "ID".into(),
                    "BY".into(),
                    "USES".into(),
                    "EXPIRES".into(),
                    "STATUS".into(),
                ]];
                rows.extend(invites.iter().map(|i| {
                    vec![
                        i.id.to_string(),
                        i.created_by.as_deref().map(person).unwrap_or_default(),
                        format!("{}/{}", i.uses, i.max_uses),
                        when(&i.expires_at),
                        i.status.clone(),
                    ]
                }));
                out!("{}", table(&rows));
            }
        }
        Some(InviteAction::Revoke { invite }) => {
            let reply = api.revoke_invite(&invite).await?;
            out.done(&reply, format_args!("invite revoked"));
        }
    }
    Ok(())
}

pub(super) async fn reset_password(
    api: &Api,
    out: &Out,
    code: &str,
    from_stdin: bool,
) -> Result<(), CliError> {
    let new = if from_stdin {
        password::new_from_stdin()?
    } else {
        password::new_password("New password").await?
    };
    let reply = api.reset_password(code, &new).await?;
    out.done(
        &reply,
        format_args!("Password set; every session has ended. Run `rtchat login` with it."),
    );
    Ok(())
}

pub(super) async fn admin(api: &Api, out: &Out, cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::Users => users(api, out).await?,
        AdminCommand::Deactivate { user } => {
            let reply = api.deactivate(target::user_name(&user)?).await?;
            out.done(
                &reply,
                format_args!("{}", reply["message"].as_str().unwrap_or("done")),
            );
        }
        AdminCommand::Reactivate { user } => {
            let reply = api.reactivate(target::user_name(&user)?).await?;
            out.done(
                &reply,
                format_args!("{}", reply["message"].as_str().unwrap_or("done")),
            );
        }
        AdminCommand::ResetPassword { user } => {
            let code = api.reset_code(target::user_name(&user)?).await?;
            if out.json {
                out.line(&code);
            } else {
                eprintln!(
                    "A one-time code for @{} (until {}):",
                    code.username,
                    when(&code.expires_at)
                );
                outln!("{}", code.code);
                eprintln!(
                    "They run:\n  rtchat reset-password --code {} --server {}",
                    code.code,
                    api.base()
                );
            }
        }
        AdminCommand::Promote { user, owner } => {
            let role = if owner {
                ServerRole::Owner
            } else {
                ServerRole::Admin
            };
            let account = api.set_role(target::user_name(&user)?, role).await?;
            out.done(
                &account,
                format_args!("@{} is now {}", account.username, account.role),
            );
        }
        AdminCommand::Demote { user } => {
            let account = api
                .set_role(target::user_name(&user)?, ServerRole::Member)
                .await?;
            out.done(
                &account,
                format_args!("@{} is now a member", account.username),
            );
        }
        AdminCommand::CreateBot { name, full_name } => {
            let made = api.create_bot(&name, full_name.as_deref()).await?;
            if out.json {
                out.line(&made);
            } else {
                eprintln!(
                    "Bot @{} created. Its token (shown once; `rtchat tokens` as the bot makes more):",
                    made.user.username
                );
                outln!("{}", made.token.token);
            }
        }
        AdminCommand::Log { limit, before } => log(api, out, limit, before).await?,
    }
    Ok(())
}

async fn users(api: &Api, out: &Out) -> Result<(), CliError> {
    let users = api.admin_users().await?;
    if out.json {
        users.iter().for_each(|u| out.line(u));
        return Ok(());
    }
    let mut rows = vec![vec![
        "USER".into(),
        "ROLE".into(),
        "ACTIVE".into(),
        "LAST SEEN".into(),
    ]];
    rows.extend(users.iter().map(|u| {
        let name = listed_person(&u.username, u.is_bot);
        let seen = if u.online {
            "online".to_string()
        } else {
            u.last_seen_at.as_ref().map(when).unwrap_or("never".into())
        };
        let active = if u.is_active { "yes" } else { "deactivated" };
        vec![name, u.role.to_string(), active.into(), seen]
    }));
    out!("{}", table(&rows));
    Ok(())
}

async fn log(api: &Api, out: &Out, limit: u32, before: Option<i64>) -> Result<(), CliError> {
    let entries = api.audit_log(limit, before).await?;
    if out.json {
        entries.iter().for_each(|e| out.line(e));
        return Ok(());
    }
    if entries.is_empty() {
        eprintln!("The audit log is empty");
    }
    for e in &entries {
        let actor = e
            .actor
            .as_deref()
            .map(person)
            .unwrap_or("(server console)".into());
        let target = e
            .target
            .as_deref()
            .map(|t| format!(" {}", person(t)))
            .unwrap_or_default();
        let detail = e
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        outln!(
            "[{}] {}  {actor} {}{target}{detail}",
            e.id,
            when(&e.at),
            e.action
        );
    }
    Ok(())
}

pub(super) async fn tokens(api: &Api, out: &Out, cmd: TokensCommand) -> Result<(), CliError> {
    match cmd {
        TokensCommand::Create { name, expires } => {
            let token = api.create_token(&name, expires).await?;
            if out.json {
                out.line(&token);
            } else {
                let until = token
                    .expires_at
                    .as_ref()
                    .map(|t| format!("until {}", when(t)))
                    .unwrap_or("until revoked".into());
                eprintln!("Token {} ({until}); shown once, keep it safe:", token.name);
                outln!("{}", token.token);
            }
        }
        TokensCommand::List => {
            let tokens = api.tokens().await?;
            if out.json {
                tokens.iter().for_each(|t| out.line(t));
            } else if tokens.is_empty() {
                eprintln!("No tokens: `rtchat tokens create NAME` makes one");
            } else {
                let mut rows = vec![vec!["NAME".into(), "CREATED".into(), "EXPIRES".into()]];
                rows.extend(tokens.iter().map(|t| {
                    vec![
                        t.name.clone(),
                        when(&t.created_at),
                        t.expires_at.as_ref().map(when).unwrap_or("never".into()),
                    ]
                }));
                out!("{}", table(&rows));
            }
        }
        TokensCommand::Revoke { name } => {
            let reply = api.revoke_token(&name).await?;
            out.done(&reply, format_args!("token {name} revoked"));
        }
    }
    Ok(())
}

pub(super) async fn webhooks(api: &Api, out: &Out, cmd: WebhooksCommand) -> Result<(), CliError> {
    match cmd {
        WebhooksCommand::Create { group, name } => {
            let (id, _) = target::resolve_group(api, &group).await?;
            let hook = api.create_webhook(id, name.as_deref()).await?;
            let url = format!("{}{}", api.base(), hook.path.as_deref().unwrap_or_default());
            if out.json {
                out.line(&json!({"webhook": hook, "url": url}));
            } else {
                eprintln!(
                    "Webhook {} posts into #{} as @{}. Its URL (shown once; it is the only key):",
                    hook.id,
                    hook.group_name.as_deref().unwrap_or("?"),
                    hook.name
                );
                outln!("{url}");
                eprintln!(
                    "Try it:\n  curl -X POST -H 'Content-Type: application/json' -d '{{\"text\":\"deploy done\"}}' {url}"
                );
            }
        }
        WebhooksCommand::List => {
            let hooks = api.webhooks().await?;
            if out.json {
                hooks.iter().for_each(|h| out.line(h));
            } else if hooks.is_empty() {
                eprintln!("No webhooks in your groups");
            } else {
                let mut rows = vec![vec![
                    "ID".into(),
                    "NAME".into(),
                    "GROUP".into(),
                    "BY".into(),
                    "CREATED".into(),
                ]];
                rows.extend(hooks.iter().map(|h| {
                    vec![
                        h.id.to_string(),
                        person(&h.name),
                        format!("#{}", h.group_name.as_deref().unwrap_or("?")),
                        h.created_by.as_deref().map(person).unwrap_or_default(),
                        when(&h.created_at),
                    ]
                }));
                out!("{}", table(&rows));
            }
        }
        WebhooksCommand::Revoke { id } => {
            let reply = api.revoke_webhook(id).await?;
            out.done(&reply, format_args!("webhook {id} revoked"));
        }
    }
    Ok(())
}
