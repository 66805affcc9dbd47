//! Getting every stored message and live event to every socket that should see it, once and in
//! order: the message writer that stores sends in batches and publishes them (`writer`) and moves
//! the senders' read pointers after (`read_pointers`), the receiver that takes the bus's events in
//! log order and fills gaps from the database (`receiver`), the fan-out to this instance's
//! connections (`hub`), and each connection's queue (`outbox`).

pub mod hub;
pub mod outbox;
pub mod presence;
pub mod read_pointers;
pub mod receiver;
pub mod writer;
