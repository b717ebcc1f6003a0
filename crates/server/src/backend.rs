//! Chooses the storage implementation the configuration asks for.

use std::sync::Arc;

use tidings_platform::config::Config;
use tidings_platform::store::AccountStore;
use tidings_platform::StoreError;
use tidings_store_postgres::PostgresStore;
use tidings_store_sqlite::SqliteStore;

/// A `postgres://` database URL selects PostgreSQL; otherwise the embedded SQLite
/// file under the data dir.
pub async fn open_store(config: &Config) -> Result<Arc<dyn AccountStore>, StoreError> {
    match &config.database_url {
        Some(url) => {
            let store =
                PostgresStore::connect(url, config.database_schema.as_deref(), &config.postgres)
                    .await?;
            Ok(Arc::new(store))
        }
        None => {
            let path = config.sqlite_path();
            let sqlite = config.sqlite.clone();
            // Opening runs migrations and may wait on another process's lock.
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, &sqlite))
                .await
                .map_err(|e| StoreError::Backend(format!("open task: {e}")))??;
            Ok(Arc::new(store))
        }
    }
}
