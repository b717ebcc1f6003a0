//! The API suite: the real server on port 0, spoken to over HTTP by the real client.
//! Every test in a module listed through `on_both_backends!` runs on SQLite and, when
//! `TIDINGS_TEST_DATABASE_URL` is set, on PostgreSQL as well.

mod helpers;

mod bad_input;
mod binary;
mod chat;
mod chat_nodes;
mod cluster;
mod crash;
mod email;
mod fcm;
mod feed;
mod isolation;
mod notifications;
mod operations;
mod providers;
mod push;
mod sessions;
mod sms;
mod smtp;
mod users;
