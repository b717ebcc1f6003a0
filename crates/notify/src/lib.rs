//! The notification service.

pub mod provider;
pub mod providers;
pub mod settings;
