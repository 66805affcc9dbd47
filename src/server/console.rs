//! `rtchat-server admin ...`: the way back in on the server's own machine when no admin can log
//! in. It reaches the same database as the server (`--database-url`, or the managed PostgreSQL
//! of `--data-dir`, whether a server is running on it or not) and writes to the audit log as the
//! server's command line.

use chrono::{Duration, Utc};

use crate::proto::ServerRole;
use crate::server::ServerError;
use crate::server::auth::secrets::{self, SecretKind};
use crate::server::config::{AdminCommand, Config};
use crate::server::database::db;
use crate::server::database::postgres::{self, ManagedPostgres};
use crate::server::store::{Audit, RoleOutcome, Store, UserRecord};

/// Runs one admin command; returns what to print.
pub async fn run(config: &Config, command: &AdminCommand) -> Result<String, ServerError> {
    let (database, managed) = reach_database(config).await?;
    let outcome = async {
        db::migrate(&database).await?;
        let pool = db::connect_pool(database, 1, config.db_timeout).await?;
        execute(&Store::new(pool), command).await
    }
    .await;
    if let Some(mut pg) = managed {
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .map_err(|e| ServerError::Config(format!("stopping PostgreSQL: {e}")))?;
    }
    outcome
}

/// The server's database: its URL, or the managed one, started for the command if no server
/// runs it (and returned, to be stopped after).
async fn reach_database(
    config: &Config,
) -> Result<(tokio_postgres::Config, Option<ManagedPostgres>), ServerError> {
    if let Some(url) = &config.database_url {
        return Ok((db::parse_url(url)?, None));
    }
    let pg_dir = config.data_dir().join("postgres");
    let running = postgres::socket_config(&pg_dir, "rtchat");
    if running.connect(tokio_postgres::NoTls).await.is_ok() {
        return Ok((running, None));
    }
    if !pg_dir.join("PG_VERSION").exists() {
        return Err(ServerError::Config(format!(
            "no rtchat database in {} (give the server's --data-dir or --database-url)",
            pg_dir.display()
        )));
    }
    let options = postgres::Options::default();
    let dir = pg_dir.clone();
    let pg = tokio::task::spawn_blocking(move || ManagedPostgres::start(&dir, &options))
        .await
        .map_err(|e| ServerError::Config(format!("starting PostgreSQL: {e}")))??;
    Ok((pg.connect_config("rtchat"), Some(pg)))
}

/// A line of the audit log written by the server's command line.
fn console<'a>(action: &'static str, user: &'a UserRecord, detail: Option<String>) -> Audit<'a> {
    Audit {
        actor: None,
        action,
        target: Some(&user.username),
        detail,
    }
}

async fn execute(store: &Store, command: &AdminCommand) -> Result<String, ServerError> {
    let failed = |e: crate::server::store::StoreError| ServerError::Config(e.to_string());
    let find = |name: String| async move {
        store
            .find_any_user(&name)
            .await
            .map_err(failed)?
            .ok_or_else(|| ServerError::Config(format!("no user named {name}")))
    };
    match command {
        AdminCommand::Promote { username, owner } => {
            let user = find(username.clone()).await?;
            let role = if *owner {
                ServerRole::Owner
            } else {
                ServerRole::Admin
            };
            let detail = Some(format!("{} -> {role}", user.role));
            store
                .set_role(user.id, role, &console("user.role", &user, detail))
                .await
                .map_err(failed)?;
            Ok(format!(
                "@{} is now {} (a running server notices within 10 seconds)",
                user.username,
                if *owner { "an owner" } else { "an admin" }
            ))
        }
        AdminCommand::Demote { username } => {
            let user = find(username.clone()).await?;
            let detail = Some(format!("{} -> member", user.role));
            let line = console("user.role", &user, detail);
            match store
                .set_role(user.id, ServerRole::Member, &line)
                .await
                .map_err(failed)?
            {
                RoleOutcome::Changed => Ok(format!("@{} is now a member", user.username)),
                RoleOutcome::LastOwner => Err(ServerError::Config(format!(
                    "@{} is the last owner: promote another with --owner first",
                    user.username
                ))),
            }
        }
        AdminCommand::ResetPassword { username } => {
            let user = find(username.clone()).await?;
            if user.is_bot {
                return Err(ServerError::Config(format!(
                    "@{} is a bot: it has no password",
                    user.username
                )));
            }
            let code = secrets::generate(SecretKind::PasswordReset);
            let expires = Utc::now() + Duration::hours(1);
            store
                .create_reset_code(
                    user.id,
                    &code.digest,
                    expires,
                    &console("user.reset-password", &user, None),
                )
                .await
                .map_err(failed)?;
            Ok(format!(
                "A one-time code for @{} (valid for an hour):\n{}\n\nThey run:\n  rtchat reset-password --code {}",
                user.username, code.text, code.text
            ))
        }
    }
}
