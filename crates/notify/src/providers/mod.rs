//! Provider clients, each over its real protocol.

pub mod apns;
pub mod fcm;
pub mod http2;
pub mod sendgrid;
pub mod smtp;
pub mod tls;
pub mod twilio;
pub mod webhook;
