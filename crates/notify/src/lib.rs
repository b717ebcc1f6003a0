//! The notification service: accepting sends, fanning them out to deliveries,
//! delivering them per channel through providers, and everything around that
//! (templates, preferences, quiet hours, rate limits, retries, dead letters, inbox).
//!
//! Architecture invariant: no I/O of its own. Storage, queues, rate-limit state,
//! providers, alerts and live sockets are traits, implemented elsewhere.

mod deliver;
pub mod directory;
mod fanout;
mod handoff;
pub mod memory_queue;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod provider;
pub mod providers;
pub mod queue;
pub mod ratelimit;
pub mod render;
pub mod service;
pub mod settings;
pub mod store;
pub mod views;
mod workers;

pub use service::{Notifier, NotifierParts};
