pub mod chat;
pub mod feed;
pub mod health;
pub mod me;
pub mod notifications;
pub mod sessions;
pub mod users;
pub mod webhooks;
