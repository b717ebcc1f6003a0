//! Local stand-ins for the push, SMS and email providers. Each speaks the provider's
//! real wire protocol, checks what a real provider checks (TLS, HTTP/2, JWTs,
//! credentials, headers, body shape), records what it received and can be told how to
//! answer, so tests exercise the real client code end to end.

pub mod apns;
pub mod fcm;
pub mod sendgrid;
pub mod tls;
pub mod twilio;
pub mod webhook;
