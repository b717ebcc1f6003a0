//! The storage seam of the accounts part of the platform. Domain code holds an
//! `Arc<dyn AccountStore>`; the embedded SQLite and the PostgreSQL crates implement it,
//! and `tidings-conformance` holds the one test suite both must pass.
//!
//! Every method that touches a tenant's rows takes the app id: isolation between apps
//! is enforced in each query, not left to callers.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::Id;
use crate::model::{App, Device, NewDevice, Platform, Preferences, UserPatch, UserRecord};

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Cheap round trip used by `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    async fn insert_app(&self, app: &App) -> StoreResult<()>;
    async fn app_by_id(&self, id: Id) -> StoreResult<Option<App>>;
    async fn app_by_key(&self, key: &str) -> StoreResult<Option<App>>;
    /// All apps, oldest first.
    async fn list_apps(&self) -> StoreResult<Vec<App>>;

    /// Fails with `Conflict("username")` or `Conflict("external_id")` on a duplicate
    /// within the app.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_id(&self, app: Id, id: Id) -> StoreResult<Option<UserRecord>>;
    async fn user_by_username(&self, app: Id, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Users of `app` among `ids`, in no particular order; unknown ids are skipped.
    async fn users_by_ids(&self, app: Id, ids: &[Id]) -> StoreResult<Vec<UserRecord>>;
    /// Applies the patch atomically; `None` when the user does not exist in `app`.
    async fn update_user(
        &self,
        app: Id,
        id: Id,
        patch: &UserPatch,
        now_ms: i64,
    ) -> StoreResult<Option<UserRecord>>;
    /// Users whose username starts with `prefix`, ordered by username, strictly after
    /// `after` when given.
    async fn search_users(
        &self,
        app: Id,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;

    /// Registers a push token for `device.user_id`. A token already known for the same
    /// app and platform keeps its id and moves to this user with the new topic; a
    /// disabled one becomes active again.
    async fn upsert_device(&self, device: &NewDevice) -> StoreResult<Device>;
    /// The user's active devices, oldest first.
    async fn list_devices(&self, app: Id, user: Id) -> StoreResult<Vec<Device>>;
    /// Deletes the device only if it belongs to `user` in `app`.
    async fn delete_device(&self, app: Id, user: Id, id: Id) -> StoreResult<bool>;
    /// Marks a token dead (the provider said it is unregistered): it is no longer
    /// listed nor used. Returns whether an active device was disabled.
    async fn disable_device(
        &self,
        app: Id,
        platform: Platform,
        token: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Active devices of any of `users`, in id order.
    async fn active_devices_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<Device>>;

    async fn preferences(&self, app: Id, user: Id) -> StoreResult<Option<Preferences>>;
    /// Stored preferences of any of `users` (users without any are left out).
    async fn preferences_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<(Id, Preferences)>>;
    async fn put_preferences(
        &self,
        app: Id,
        user: Id,
        prefs: &Preferences,
        now_ms: i64,
    ) -> StoreResult<()>;
}
