use tidings_platform::StoreError;

/// Maps a driver error to the platform's vocabulary, naming a broken uniqueness rule
/// by the field users know it by.
pub(crate) fn map(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            let what = match db.constraint() {
                Some("users_app_username") => "username",
                Some("users_app_external_id") => "external_id",
                Some("apps_key_unique") => "app key",
                _ => "record",
            };
            StoreError::Conflict(what.into())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Backend(err.to_string()),
    }
}
