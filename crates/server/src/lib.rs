//! The `tidings` server: wires the platform, the stores and the services into one
//! HTTP/WebSocket node.

pub mod backend;
pub mod chat;
pub mod feed;
pub mod http;
pub mod notify;
pub mod server;
pub mod state;
pub mod ws;

pub use server::{build_state, Server, StartError};
