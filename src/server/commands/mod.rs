//! The command layer: what a user can do (send, edit, delete, search, read, sync, type, come online,
//! change a room's membership), whichever door they came in by, and the one error every command
//! answers with. The doors (`http`, `ws`) parse and authenticate, call a command, and turn its
//! result or `ApiError` into their own answer.

pub(crate) mod authority;
pub mod error;
pub(crate) mod mentions;
pub(crate) mod messaging;
pub mod validate;

pub use error::{ApiError, Cause};
