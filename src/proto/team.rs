//! Wire types of a server a team runs (issue 22): roles, invites, administration and its audit
//! log, password reset codes, personal access tokens, bots and incoming webhooks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PublicUser, RoomId, Timestamp, UserId};

/// What an account may do on the server. The first account of a server is its owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    /// Everything an admin may, and makes or unmakes admins and owners.
    Owner,
    /// Deactivates and reactivates accounts, resets passwords, creates bots, reads the audit log.
    Admin,
    #[default]
    Member,
}

impl ServerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Owner => "owner",
            ServerRole::Admin => "admin",
            ServerRole::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<ServerRole> {
        match text {
            "owner" => Some(ServerRole::Owner),
            "admin" => Some(ServerRole::Admin),
            "member" => Some(ServerRole::Member),
            _ => None,
        }
    }

    /// Admins and owners administer.
    pub fn administers(self) -> bool {
        self != ServerRole::Member
    }
}

impl std::fmt::Display for ServerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /invites`: how many accounts the code may create, and for how long.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateInviteRequest {
    /// Accounts it may create (1 to 1000; default 1).
    #[serde(default)]
    pub max_uses: Option<i32>,
    /// Seconds it stays valid (one minute to a year; default 7 days).
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// An invite as its makers see it; `code` only in the reply that created it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    pub id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub max_uses: i32,
    pub uses: i32,
    /// `active`, `used`, `expired` or `revoked`.
    pub status: String,
}

/// An account as an admin sees it (`GET /admin/users`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdminUser {
    pub id: UserId,
    pub username: String,
    pub full_name: Option<String>,
    pub email: String,
    pub role: ServerRole,
    pub is_active: bool,
    pub is_bot: bool,
    /// Has a live connection on some instance now.
    pub online: bool,
    /// When they last signed in, connected or disconnected.
    pub last_seen_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// `PUT /admin/users/{username}/role`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetRoleRequest {
    pub role: ServerRole,
}

/// A one-time password reset code, made by an admin for a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetCode {
    pub username: String,
    pub code: String,
    pub expires_at: Timestamp,
}

/// `POST /auth/reset-password`: a reset code and the new password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    pub code: String,
    pub new_password: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// Who did it; none: the server's own command line.
    pub actor: Option<String>,
    /// e.g. `user.deactivate`, `user.role`, `invite.create`.
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// `POST /tokens` (and `POST /admin/bots`' first token).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// A name of the caller's own choosing, unique among their live tokens.
    pub name: String,
    /// Seconds it stays valid; none: until revoked.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// A personal access token as listed (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessToken {
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// A token, shown once: use it as `Authorization: Bearer TOKEN`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub name: String,
    pub token: String,
    pub expires_at: Option<Timestamp>,
    /// Whose token it is.
    pub username: String,
}

/// `POST /admin/bots`: a bot account (no password; tokens only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateBotRequest {
    pub username: String,
    #[serde(default)]
    pub full_name: Option<String>,
}

/// The bot made, and its first token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BotCreated {
    pub user: PublicUser,
    pub token: CreatedToken,
}

/// `POST /webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateWebhookRequest {
    pub group_id: RoomId,
    /// The sender name its messages carry (a bot account's username); default `GROUP-hook`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A webhook as listed; `path` (its secret address, under the server's) only in the reply that
/// created it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: i32,
    pub name: String,
    pub group_id: RoomId,
    pub group_name: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
    /// `/hooks/SECRET`: POST `{"text": "..."}` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What a webhook's post answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookPosted {
    pub ok: bool,
    pub message_id: super::MessageId,
}

/// `POST /invites/revoke`: an invite by its id (as listed) or its code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RevokeInviteRequest {
    #[serde(default)]
    pub id: Option<i32>,
    #[serde(default)]
    pub code: Option<String>,
}

/// What a webhook's caller posts (Slack's shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookPost {
    pub text: String,
}

/// `PATCH /groups/{id}`: what changes (each when given).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateGroupRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// Empty clears it.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub is_public: Option<bool>,
}

/// A group as anyone on the server may see it, if it is public (`GET /groups/public`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicGroup {
    pub id: RoomId,
    pub name: String,
    pub topic: Option<String>,
    pub member_count: i64,
    /// Whether the caller is in it already.
    pub is_member: bool,
}

/// A member named by id, for the group routes that act on one (`admins`, `owner`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupMemberRequest {
    #[serde(deserialize_with = "super::lenient::int")]
    pub user_id: UserId,
}
