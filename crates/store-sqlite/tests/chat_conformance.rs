use std::any::Any;
use std::sync::Arc;

use tidings_chat::store::ChatStore;
use tidings_conformance::chat_store_suite;
use tidings_platform::config::SqliteConfig;
use tidings_store_sqlite::SqliteStore;

async fn fresh() -> Option<(Arc<dyn ChatStore>, Box<dyn Any + Send + Sync>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("chat.db"), &SqliteConfig::default())
        .expect("open sqlite");
    Some((Arc::new(store), Box::new(dir)))
}

chat_store_suite!(fresh);
