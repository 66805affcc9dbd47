//! Who may do what: the server's roles (owner, admin, member, bot) and a group's (owner, admin,
//! member), as rules every door asks before it acts. The rules live here, once; the doors only
//! find the people and rooms they are about.

use crate::proto::ServerRole;
use crate::server::commands::ApiError;
use crate::server::store::{RoomAccess, UserRecord};

/// Admins and owners administer the server.
pub fn administer(actor: &UserRecord) -> Result<(), ApiError> {
    if actor.role.administers() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the server's admins and owners can do this".into(),
        ))
    }
}

/// Owners alone make and unmake admins and owners.
pub fn set_roles(actor: &UserRecord) -> Result<(), ApiError> {
    administer(actor)?;
    if actor.role == ServerRole::Owner {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the server's owners make or unmake admins".into(),
        ))
    }
}

/// Deactivating `target`: not oneself, and an owner only by an owner.
pub fn deactivate(actor: &UserRecord, target: &UserRecord) -> Result<(), ApiError> {
    administer(actor)?;
    if target.id == actor.id {
        return Err(ApiError::BadRequest(
            "You cannot deactivate yourself".into(),
        ));
    }
    above_or_equal(actor, target, "deactivate")
}

/// A reset code for `target`: a person (a bot has no password), an owner's only by an owner.
pub fn reset_password_of(actor: &UserRecord, target: &UserRecord) -> Result<(), ApiError> {
    administer(actor)?;
    if target.is_bot {
        return Err(ApiError::BadRequest(
            "A bot has no password: give it a token instead".into(),
        ));
    }
    above_or_equal(actor, target, "reset the password of")
}

fn above_or_equal(actor: &UserRecord, target: &UserRecord, what: &str) -> Result<(), ApiError> {
    if target.role == ServerRole::Owner && actor.role != ServerRole::Owner {
        Err(ApiError::Forbidden(format!(
            "Only an owner can {what} an owner"
        )))
    } else {
        Ok(())
    }
}

/// Changing a group (name, topic, public or not, members): its owner and admins.
pub fn change_group(access: &RoomAccess, actor: &UserRecord) -> Result<(), ApiError> {
    if access.is_admin(actor.id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the group's owner and admins can change it".into(),
        ))
    }
}

/// What only a group's owner does (`what`: make admins, hand it over).
pub fn own_group(access: &RoomAccess, actor: &UserRecord, what: &str) -> Result<(), ApiError> {
    if access.is_owner(actor.id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Only the group's owner can {what}"
        )))
    }
}

/// A group's webhooks: its owner and admins, or an admin of the server who is in the group.
pub fn manage_webhooks(access: &RoomAccess, actor: &UserRecord) -> Result<(), ApiError> {
    if access.is_admin(actor.id) || (access.is_member && actor.role.administers()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only the group's admin (or the server's) can manage its webhooks".into(),
        ))
    }
}

/// Removing `target` (not oneself) from a group: an admin removes members, the owner removes
/// admins too, nobody removes the owner.
pub fn remove_from_group(
    actor_access: &RoomAccess,
    actor: &UserRecord,
    target_access: Option<&RoomAccess>,
    target: crate::proto::UserId,
) -> Result<(), ApiError> {
    if !actor_access.is_admin(actor.id) {
        return Err(ApiError::Forbidden(
            "Not authorized to remove this member".into(),
        ));
    }
    if let Some(t) = target_access.filter(|t| t.is_member)
        && (t.is_owner(target) || (t.member_admin && !actor_access.is_owner(actor.id)))
    {
        return Err(ApiError::Forbidden(
            "Only the group's owner can remove an admin, and nobody can remove the owner".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::RoomKind;

    fn person(id: i32, role: ServerRole) -> UserRecord {
        UserRecord {
            id,
            username: format!("u{id}"),
            email: format!("u{id}@example.com"),
            full_name: None,
            is_active: true,
            is_verified: false,
            created_at: chrono::Utc::now(),
            role,
            is_bot: false,
        }
    }

    fn in_group(owner: i32, admin: bool) -> RoomAccess {
        RoomAccess {
            kind: RoomKind::Group,
            created_by: Some(owner),
            is_member: true,
            member_admin: admin,
            last_read: 0,
            others_last_read: 0,
        }
    }

    #[test]
    fn the_server_roles_rules() {
        let (owner, admin, member) = (
            person(1, ServerRole::Owner),
            person(2, ServerRole::Admin),
            person(3, ServerRole::Member),
        );
        assert!(administer(&admin).is_ok() && administer(&member).is_err());
        assert!(set_roles(&owner).is_ok() && set_roles(&admin).is_err());
        assert!(deactivate(&admin, &member).is_ok());
        assert!(
            deactivate(&admin, &owner).is_err(),
            "an admin over an owner"
        );
        assert!(deactivate(&owner, &owner).is_err(), "oneself");
        let mut bot = person(4, ServerRole::Member);
        bot.is_bot = true;
        assert!(reset_password_of(&admin, &bot).is_err());
        assert!(reset_password_of(&admin, &owner).is_err());
        assert!(reset_password_of(&owner, &admin).is_ok());
    }

    #[test]
    fn the_group_roles_rules() {
        let (owner, admin, member) = (
            person(1, ServerRole::Member),
            person(2, ServerRole::Member),
            person(3, ServerRole::Member),
        );
        let as_owner = in_group(1, false);
        let as_admin = in_group(1, true);
        let as_member = in_group(1, false);
        assert!(change_group(&as_admin, &admin).is_ok());
        assert!(change_group(&as_member, &member).is_err());
        assert!(own_group(&as_owner, &owner, "x").is_ok());
        assert!(own_group(&as_admin, &admin, "x").is_err());
        // An admin removes a member, not another admin, and nobody removes the owner.
        assert!(remove_from_group(&as_admin, &admin, Some(&in_group(1, false)), 3).is_ok());
        assert!(remove_from_group(&as_admin, &admin, Some(&in_group(1, true)), 4).is_err());
        assert!(remove_from_group(&as_owner, &owner, Some(&in_group(1, true)), 2).is_ok());
        assert!(remove_from_group(&as_admin, &admin, Some(&in_group(1, false)), 1).is_err());
        assert!(remove_from_group(&as_member, &member, Some(&in_group(1, false)), 2).is_err());
        // A server admin in the group manages its webhooks; outside it, nothing.
        let server_admin = person(5, ServerRole::Admin);
        assert!(manage_webhooks(&in_group(1, false), &server_admin).is_ok());
        let mut outside = in_group(1, false);
        outside.is_member = false;
        assert!(manage_webhooks(&outside, &server_admin).is_err());
    }
}
