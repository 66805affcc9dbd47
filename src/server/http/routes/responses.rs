//! The error answers the OpenAPI document names, one type per kind (each an `ErrorBody` under the
//! status the routes give it), apart from the document so that the routes that cite them and the
//! document that lists the routes do not import each other.

use utoipa::ToResponse;

use crate::proto::ErrorBody;

/// What any route that reads a JSON body may answer besides its own replies (the body's
/// extractor refuses before the handler runs): 400, 408, 413, 415, 422.
pub struct BodyErrors;

impl utoipa::IntoResponses for BodyErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::{Ref, RefOr};
        [
            ("400", "BadRequest"),
            ("408", "RequestTimeout"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Invalid"),
        ]
        .into_iter()
        .map(|(status, name)| {
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(name)),
            )
        })
        .collect()
    }
}

/// A malformed request: not JSON, or a rule of the request broken (the detail says which).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct BadRequest(ErrorBody);

/// No valid access token (missing, expired, forged, or its session ended).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unauthorized(ErrorBody);

/// Not yours: someone else's room, or an admin's right.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Forbidden(ErrorBody);

/// No such user, group, room or message.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct NotFound(ErrorBody);

/// Taken: a username or email, or a `client_id` used in another room.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Conflict(ErrorBody);

/// The body did not arrive within the body deadline.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct RequestTimeout(ErrorBody);

/// The body is larger than the server takes (64 KiB).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct PayloadTooLarge(ErrorBody);

/// A body that is not declared as JSON (`Content-Type: application/json`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct UnsupportedMediaType(ErrorBody);

/// Fields missing, of the wrong type, or out of range: `detail` lists each with its location.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Invalid(ErrorBody);

/// Too fast (sends, logins, registrations): `Retry-After` says when to try again.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct TooManyRequests(ErrorBody);

/// The database is unreachable or slow, or the server is saturated: try again (`Retry-After`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Unavailable(ErrorBody);
