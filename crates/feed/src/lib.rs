//! The news feed service: posts, the follow graph, mutes and likes in the store of
//! record; fan-out on write into capped per-user feed caches, with authors above a
//! follower threshold merged in at read time instead; hydrated reads.
//!
//! Architecture invariant: no I/O of its own. The store, the feed cache and the
//! fan-out queue are traits.

pub mod cache;
mod fanout;
pub mod model;
pub mod objects;
pub mod service;
pub mod store;
pub mod views;

pub use service::{Feed, FeedParts};
