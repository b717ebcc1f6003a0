//! The chat service: channels, durable per-channel ordered messages, live routing
//! through each node's hub, offline sync by log position, presence and discovery.
//!
//! Architecture invariant: no I/O of its own. Storage, pub/sub between nodes,
//! presence and the gateway registry are traits; the WebSocket itself lives in the
//! server crate and talks to a [`hub::Connection`].

pub mod bus;
pub mod discovery;
pub mod frames;
pub mod hub;
pub mod members;
pub mod model;
pub mod presence;
pub mod service;
pub mod store;
pub mod views;

pub use service::{Chat, ChatParts};
