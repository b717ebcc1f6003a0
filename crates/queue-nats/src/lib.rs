//! NATS for Tidings clusters: the work queue on JetStream ([`NatsQueue`]) and the
//! chat bus on core NATS subjects ([`NatsBus`]).

mod bus;
mod queue;

pub use bus::NatsBus;
pub use queue::*;
