//! Domain types of the accounts part of the platform, with their validation.

pub mod app;
pub mod device;
pub mod preferences;
pub mod user;
pub mod validate;

pub use app::{App, AppCredentials};
pub use device::{Device, NewDevice, Platform};
pub use preferences::{Channel, ChannelSwitches, Preferences, QuietHours};
pub use user::{PublicUser, User, UserPatch, UserRecord};
