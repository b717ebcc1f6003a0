use tidings_platform::StoreError;

/// Maps a SQLite failure to the platform's vocabulary, naming the broken uniqueness
/// rule by the column users know it by.
pub(crate) fn map(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, message) = &err {
        match code.code {
            rusqlite::ErrorCode::ConstraintViolation => {
                let msg = message.as_deref().unwrap_or_default();
                let what = if msg.contains("users.username") {
                    "username"
                } else if msg.contains("users.external_id") {
                    "external_id"
                } else if msg.contains("apps.key") {
                    "app key"
                } else {
                    "record"
                };
                return StoreError::Conflict(what.into());
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable(format!("database busy: {err}"));
            }
            _ => {}
        }
    }
    StoreError::Backend(err.to_string())
}
