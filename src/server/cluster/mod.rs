//! Many servers, one chat: what instances of rtchat-server share, and how each hears the others.
//!
//! Every live fact an instance produces (a stored message, a read receipt, typing, presence, a
//! membership change, a session ended) is an `Event`, sent on a `Bus` that every instance (the
//! sender included) listens to; each applies what it hears to its own connections (`delivery::receiver`).
//! Messages and membership removals are also positions in one commit-ordered log (their ids, taken
//! under one lock in the inserting transaction), which the receiver delivers in order and fills
//! from the database wherever the bus lost something. `presence` keeps who is online on which
//! instance, in the database, and forgets instances that stop beating.

pub mod bus;
pub mod event;
pub mod nats_bus;
pub mod postgres_bus;

pub use bus::{Bus, BusError, BusKind, Outgoing};
pub use event::Event;
