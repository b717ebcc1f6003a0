//! Schema migrations, tracked by `PRAGMA user_version`: migration N has run when
//! `user_version >= N`. Each runs in its own transaction with the version bump.

use rusqlite::Connection;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_accounts",
        include_str!("../migrations/0001_accounts.sql"),
    ),
    ("0002_notify", include_str!("../migrations/0002_notify.sql")),
    ("0003_chat", include_str!("../migrations/0003_chat.sql")),
    ("0004_feed", include_str!("../migrations/0004_feed.sql")),
    (
        "0005_feed_followers_index",
        include_str!("../migrations/0005_feed_followers_index.sql"),
    ),
    (
        "0006_deliveries_dispatch_index",
        include_str!("../migrations/0006_deliveries_dispatch_index.sql"),
    ),
    (
        "0007_notifications_dispatch_index",
        include_str!("../migrations/0007_notifications_dispatch_index.sql"),
    ),
];

pub(crate) fn run(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > index {
            continue;
        }
        tracing::info!(migration = name, "applying sqlite migration");
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tx.commit()?;
    }
    Ok(())
}
