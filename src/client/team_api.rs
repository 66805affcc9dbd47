//! The client's side of a server a team runs: invites, password reset codes, administration,
//! personal access tokens and webhooks (one method per route, as in `api`).

use reqwest::Method;
use serde_json::{Value, json};

use super::api::{Api, NO_BODY, encode_segment};
use super::error::CliError;
use crate::proto::team::{
    AccessToken, AdminUser, AuditEntry, BotCreated, CreateBotRequest, CreateInviteRequest,
    CreateTokenRequest, CreateWebhookRequest, CreatedToken, Invite, ResetCode,
    ResetPasswordRequest, RevokeInviteRequest, SetRoleRequest, Webhook,
};
use crate::proto::team::{GroupMemberRequest, PublicGroup, UpdateGroupRequest};
use crate::proto::{GroupSummary, RoomId, ServerRole, UserId};

impl Api {
    // ----- invites -----

    pub async fn create_invite(&self, request: &CreateInviteRequest) -> Result<Invite, CliError> {
        self.call(Method::POST, "/invites", &[], Some(request), true)
            .await
    }

    pub async fn invites(&self) -> Result<Vec<Invite>, CliError> {
        self.call(Method::GET, "/invites", &[], NO_BODY, true).await
    }

    /// Revokes an invite by its id (all digits) or its code.
    pub async fn revoke_invite(&self, id_or_code: &str) -> Result<Value, CliError> {
        let body = match id_or_code.parse::<i32>() {
            Ok(id) => RevokeInviteRequest {
                id: Some(id),
                code: None,
            },
            Err(_) => RevokeInviteRequest {
                id: None,
                code: Some(id_or_code.to_string()),
            },
        };
        self.call(Method::POST, "/invites/revoke", &[], Some(&body), true)
            .await
    }

    /// Sets a new password with an admin's one-time code (no login needed).
    pub async fn reset_password(&self, code: &str, new_password: &str) -> Result<Value, CliError> {
        let body = ResetPasswordRequest {
            code: code.into(),
            new_password: new_password.into(),
        };
        self.call(
            Method::POST,
            "/auth/reset-password",
            &[],
            Some(&body),
            false,
        )
        .await
    }

    // ----- administration -----

    pub async fn admin_users(&self) -> Result<Vec<AdminUser>, CliError> {
        self.call(Method::GET, "/admin/users", &[], NO_BODY, true)
            .await
    }

    /// `deactivate`, `reactivate` or `reset-password` for `username`.
    async fn admin_action<T: serde::de::DeserializeOwned>(
        &self,
        username: &str,
        action: &str,
    ) -> Result<T, CliError> {
        let path = format!("/admin/users/{}/{action}", encode_segment(username));
        self.call(Method::POST, &path, &[], NO_BODY, true).await
    }

    pub async fn deactivate(&self, username: &str) -> Result<Value, CliError> {
        self.admin_action(username, "deactivate").await
    }

    pub async fn reactivate(&self, username: &str) -> Result<Value, CliError> {
        self.admin_action(username, "reactivate").await
    }

    pub async fn reset_code(&self, username: &str) -> Result<ResetCode, CliError> {
        self.admin_action(username, "reset-password").await
    }

    pub async fn set_role(&self, username: &str, role: ServerRole) -> Result<AdminUser, CliError> {
        let path = format!("/admin/users/{}/role", encode_segment(username));
        self.call(
            Method::PUT,
            &path,
            &[],
            Some(&SetRoleRequest { role }),
            true,
        )
        .await
    }

    pub async fn create_bot(
        &self,
        username: &str,
        full_name: Option<&str>,
    ) -> Result<BotCreated, CliError> {
        let body = CreateBotRequest {
            username: username.into(),
            full_name: full_name.map(str::to_string),
        };
        self.call(Method::POST, "/admin/bots", &[], Some(&body), true)
            .await
    }

    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, CliError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(before) = before {
            query.push(("before_id", before.to_string()));
        }
        self.call(Method::GET, "/admin/log", &query, NO_BODY, true)
            .await
    }

    // ----- personal access tokens -----

    pub async fn create_token(
        &self,
        name: &str,
        expires_in_seconds: Option<i64>,
    ) -> Result<CreatedToken, CliError> {
        let body = CreateTokenRequest {
            name: name.into(),
            expires_in_seconds,
        };
        self.call(Method::POST, "/tokens", &[], Some(&body), true)
            .await
    }

    pub async fn tokens(&self) -> Result<Vec<AccessToken>, CliError> {
        self.call(Method::GET, "/tokens", &[], NO_BODY, true).await
    }

    pub async fn revoke_token(&self, name: &str) -> Result<Value, CliError> {
        let path = format!("/tokens/{}", encode_segment(name));
        self.call(Method::DELETE, &path, &[], NO_BODY, true).await
    }

    // ----- webhooks -----

    pub async fn create_webhook(
        &self,
        group: RoomId,
        name: Option<&str>,
    ) -> Result<Webhook, CliError> {
        let body = CreateWebhookRequest {
            group_id: group,
            name: name.map(str::to_string),
        };
        self.call(Method::POST, "/webhooks", &[], Some(&body), true)
            .await
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>, CliError> {
        self.call(Method::GET, "/webhooks", &[], NO_BODY, true)
            .await
    }

    pub async fn revoke_webhook(&self, id: i32) -> Result<Value, CliError> {
        let path = format!("/webhooks/{id}");
        self.call(Method::DELETE, &path, &[], NO_BODY, true).await
    }

    /// Posts `text` to a webhook's address (no login: the address is the credential).
    pub async fn post_to_webhook(&self, path: &str, text: &str) -> Result<Value, CliError> {
        self.call(
            Method::POST,
            path,
            &[],
            Some(&json!({ "text": text })),
            false,
        )
        .await
    }

    // ----- group settings and public groups -----

    pub async fn public_groups(&self) -> Result<Vec<PublicGroup>, CliError> {
        self.call(Method::GET, "/groups/public", &[], NO_BODY, true)
            .await
    }

    pub async fn join_group(&self, group: RoomId) -> Result<Value, CliError> {
        let path = format!("/groups/{group}/join");
        self.call(Method::POST, &path, &[], NO_BODY, true).await
    }

    pub async fn update_group(
        &self,
        group: RoomId,
        change: &UpdateGroupRequest,
    ) -> Result<GroupSummary, CliError> {
        let path = format!("/groups/{group}");
        self.call(Method::PATCH, &path, &[], Some(change), true)
            .await
    }

    /// Makes a member an admin of the group (or, with `admin` false, not).
    pub async fn set_group_admin(
        &self,
        group: RoomId,
        user: UserId,
        admin: bool,
    ) -> Result<Value, CliError> {
        let path = format!("/groups/{group}/admins");
        let method = if admin { Method::POST } else { Method::DELETE };
        let body = GroupMemberRequest { user_id: user };
        self.call(method, &path, &[], Some(&body), true).await
    }

    pub async fn hand_over_group(&self, group: RoomId, user: UserId) -> Result<Value, CliError> {
        let path = format!("/groups/{group}/owner");
        let body = GroupMemberRequest { user_id: user };
        self.call(Method::POST, &path, &[], Some(&body), true).await
    }
}
