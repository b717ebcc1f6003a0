pub mod health;
pub mod me;
pub mod sessions;
pub mod users;
