//! Wiring of the notification service: the provider directory built from stored
//! settings, and the operator alert sink.

pub mod alerts;
pub mod directory;
pub mod providers;
