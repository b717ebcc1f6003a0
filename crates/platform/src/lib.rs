//! The platform every Tidings service stands on: ids, configuration, errors,
//! authentication, the accounts service and the storage traits.
//!
//! Architecture invariant: nothing here performs I/O of its own. Storage is reached
//! only through the traits in [`store`], implemented by the store crates.

pub mod accounts;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod model;
pub mod page;
pub mod store;

pub use error::{Error, ErrorCode, Result, StoreError};
pub use ids::Id;
