use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_platform::model::{
    App, Device, NewDevice, Platform, Preferences, UserPatch, UserRecord,
};
use tidings_platform::store::{AccountStore, StoreResult};
use tidings_platform::{Id, StoreError};

use crate::error::map;
use crate::SqliteStore;

const USER_COLUMNS: &str = "id, app_id, username, display_name, email, phone, locale, timezone, \
     avatar_url, external_id, password_hash, created_at, updated_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        username: r.get(2)?,
        display_name: r.get(3)?,
        email: r.get(4)?,
        phone: r.get(5)?,
        locale: r.get(6)?,
        timezone: r.get(7)?,
        avatar_url: r.get(8)?,
        external_id: r.get(9)?,
        password_hash: r.get(10)?,
        created_at_ms: r.get(11)?,
        updated_at_ms: r.get(12)?,
    })
}

fn app_from_row(r: &Row<'_>) -> rusqlite::Result<App> {
    let digest: Vec<u8> = r.get(3)?;
    let mut secret_sha256 = [0u8; 32];
    if digest.len() == 32 {
        secret_sha256.copy_from_slice(&digest);
    }
    Ok(App {
        id: Id(r.get(0)?),
        name: r.get(1)?,
        key: r.get(2)?,
        secret_sha256,
        signing_key: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    let platform: String = r.get(3)?;
    Ok(Device {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        user_id: Id(r.get(2)?),
        platform: Platform::parse(&platform).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                "unknown platform".into(),
            )
        })?,
        token: r.get(4)?,
        topic: r.get(5)?,
        created_at_ms: r.get(6)?,
        updated_at_ms: r.get(7)?,
    })
}

const APP_COLUMNS: &str = "id, name, key, secret_sha256, signing_key, created_at";
const DEVICE_COLUMNS: &str = "id, app_id, user_id, platform, token, topic, created_at, updated_at";

fn user_by_id(conn: &Connection, app: Id, id: Id) -> rusqlite::Result<Option<UserRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE app_id = ?1 AND id = ?2"
    ))?
    .query_row(params![app.0, id.0], user_from_row)
    .optional()
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.readers
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map))
            .await?;
        // The writer answering proves the write path (and its thread) is alive too.
        self.writer.write(|_| Ok(())).await
    }

    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        let app = app.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO apps (id, name, key, secret_sha256, signing_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![app.id.0, app.name, app.key, &app.secret_sha256[..], app.signing_key, app.created_at_ms])
                })
                .map(drop)
                .map_err(map)
            })
            .await
    }

    async fn app_by_id(&self, id: Id) -> StoreResult<Option<App>> {
        self.readers
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"))
                    .and_then(|mut s| s.query_row([id.0], app_from_row).optional())
                    .map_err(map)
            })
            .await
    }

    async fn app_by_key(&self, key: &str) -> StoreResult<Option<App>> {
        let key = key.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps WHERE key = ?1"))
                    .and_then(|mut s| s.query_row([key], app_from_row).optional())
                    .map_err(map)
            })
            .await
    }

    async fn list_apps(&self) -> StoreResult<Vec<App>> {
        self.readers
            .read(|c| {
                c.prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY id"))
                    .and_then(|mut s| s.query_map([], app_from_row)?.collect())
                    .map_err(map)
            })
            .await
    }

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        let u = user.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        u.id.0,
                        u.app_id.0,
                        u.username,
                        u.display_name,
                        u.email,
                        u.phone,
                        u.locale,
                        u.timezone,
                        u.avatar_url,
                        u.external_id,
                        u.password_hash,
                        u.created_at_ms,
                        u.updated_at_ms
                    ])
                })
                .map(drop)
                .map_err(map)
            })
            .await
    }

    async fn user_by_id(&self, app: Id, id: Id) -> StoreResult<Option<UserRecord>> {
        self.readers
            .read(move |c| user_by_id(c, app, id).map_err(map))
            .await
    }

    async fn user_by_username(&self, app: Id, username: &str) -> StoreResult<Option<UserRecord>> {
        let username = username.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE app_id = ?1 AND username = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![app.0, username], user_from_row)
                        .optional()
                })
                .map_err(map)
            })
            .await
    }

    async fn users_by_ids(&self, app: Id, ids: &[Id]) -> StoreResult<Vec<UserRecord>> {
        let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        // `+app_id` keeps the planner off the (app_id, username) index,
                        // which would read every user of the app: the ids are primary
                        // keys, the app check a filter on each.
                        "SELECT {USER_COLUMNS} FROM users WHERE +app_id = ?1 AND id IN rarray(?2)"
                    ))
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![app.0, crate::id_array(ids)], user_from_row)
                    .map_err(map)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
            })
            .await
    }

    async fn update_user(
        &self,
        app: Id,
        id: Id,
        patch: &UserPatch,
        now_ms: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let patch = patch.clone();
        self.writer
            .write(move |c| {
                let Some(mut user) = user_by_id(c, app, id).map_err(map)? else {
                    return Ok(None);
                };
                if patch.is_empty() {
                    return Ok(Some(user));
                }
                patch.apply(&mut user);
                user.updated_at_ms = now_ms;
                c.prepare_cached(
                    "UPDATE users SET display_name = ?3, email = ?4, phone = ?5, locale = ?6, timezone = ?7, \
                     avatar_url = ?8, updated_at = ?9 WHERE app_id = ?1 AND id = ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        app.0,
                        id.0,
                        user.display_name,
                        user.email,
                        user.phone,
                        user.locale,
                        user.timezone,
                        user.avatar_url,
                        now_ms
                    ])
                })
                .map_err(map)?;
                Ok(Some(user))
            })
            .await
    }

    async fn search_users(
        &self,
        app: Id,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        // Usernames are ASCII below DEL, so [prefix, prefix || DEL) is exactly the
        // names that start with prefix, and it walks the (app_id, username) index.
        let low = match after {
            Some(a) if a > prefix => a.to_owned(),
            _ => prefix.to_owned(),
        };
        let strict = after.is_some_and(|a| a >= prefix);
        let high = format!("{prefix}\u{7f}");
        self.readers
            .read(move |c| {
                let op = if strict { ">" } else { ">=" };
                c.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE app_id = ?1 AND username {op} ?2 AND username < ?3 \
                     ORDER BY username LIMIT ?4"
                ))
                .and_then(|mut s| s.query_map(params![app.0, low, high, limit], user_from_row)?.collect())
                .map_err(map)
            })
            .await
    }

    async fn upsert_device(&self, device: &NewDevice) -> StoreResult<Device> {
        let d = device.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(&format!(
                    "INSERT INTO devices (id, app_id, user_id, platform, token, topic, disabled_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?7) \
                     ON CONFLICT (app_id, platform, token) DO UPDATE SET \
                       user_id = excluded.user_id, topic = excluded.topic, disabled_at = NULL, updated_at = excluded.updated_at \
                     RETURNING {DEVICE_COLUMNS}"
                ))
                .and_then(|mut s| {
                    s.query_row(
                        params![d.id.0, d.app_id.0, d.user_id.0, d.platform.as_str(), d.token, d.topic, d.now_ms],
                        device_from_row,
                    )
                })
                .map_err(map)
            })
            .await
    }

    async fn list_devices(&self, app: Id, user: Id) -> StoreResult<Vec<Device>> {
        self.readers
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = ?1 AND user_id = ?2 AND disabled_at IS NULL ORDER BY id"
                ))
                .and_then(|mut s| s.query_map(params![app.0, user.0], device_from_row)?.collect())
                .map_err(map)
            })
            .await
    }

    async fn delete_device(&self, app: Id, user: Id, id: Id) -> StoreResult<bool> {
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "DELETE FROM devices WHERE app_id = ?1 AND user_id = ?2 AND id = ?3",
                )
                .and_then(|mut s| s.execute(params![app.0, user.0, id.0]))
                .map(|n| n > 0)
                .map_err(map)
            })
            .await
    }

    async fn disable_device(
        &self,
        app: Id,
        platform: Platform,
        token: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let token = token.to_owned();
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE devices SET disabled_at = ?4, updated_at = ?4 \
                     WHERE app_id = ?1 AND platform = ?2 AND token = ?3 AND disabled_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![app.0, platform.as_str(), token, now_ms]))
                .map(|n| n > 0)
                .map_err(map)
            })
            .await
    }

    async fn active_devices_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<Device>> {
        let users: Vec<i64> = users.iter().map(|i| i.0).collect();
        self.readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = ?1 AND user_id IN rarray(?2) \
                         AND disabled_at IS NULL ORDER BY id"
                    ))
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![app.0, crate::id_array(users)], device_from_row)
                    .map_err(map)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
            })
            .await
    }

    async fn preferences_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<(Id, Preferences)>> {
        let users: Vec<i64> = users.iter().map(|i| i.0).collect();
        let rows: Vec<(i64, String)> = self
            .readers
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user_id, body FROM preferences WHERE app_id = ?1 AND user_id IN rarray(?2)",
                    )
                    .map_err(map)?;
                let rows = stmt
                    .query_map(params![app.0, crate::id_array(users)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
            })
            .await?;
        rows.into_iter()
            .map(|(id, body)| {
                serde_json::from_str(&body)
                    .map(|p| (Id(id), p))
                    .map_err(|e| StoreError::Backend(format!("stored preferences: {e}")))
            })
            .collect()
    }

    async fn preferences(&self, app: Id, user: Id) -> StoreResult<Option<Preferences>> {
        let body: Option<String> = self
            .readers
            .read(move |c| {
                c.prepare_cached("SELECT body FROM preferences WHERE app_id = ?1 AND user_id = ?2")
                    .and_then(|mut s| s.query_row(params![app.0, user.0], |r| r.get(0)).optional())
                    .map_err(map)
            })
            .await?;
        body.map(|b| {
            serde_json::from_str(&b)
                .map_err(|e| StoreError::Backend(format!("stored preferences: {e}")))
        })
        .transpose()
    }

    async fn put_preferences(
        &self,
        app: Id,
        user: Id,
        prefs: &Preferences,
        now_ms: i64,
    ) -> StoreResult<()> {
        let body = serde_json::to_string(prefs).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.writer
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO preferences (user_id, app_id, body, updated_at) \
                     SELECT id, app_id, ?3, ?4 FROM users WHERE app_id = ?1 AND id = ?2 \
                     ON CONFLICT (user_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                )
                .and_then(|mut s| s.execute(params![app.0, user.0, body, now_ms]))
                .map(drop)
                .map_err(map)
            })
            .await
    }
}
