use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;
use tidings_platform::model::{
    App, Device, NewDevice, Platform, Preferences, UserPatch, UserRecord,
};
use tidings_platform::store::{AccountStore, StoreResult};
use tidings_platform::{Id, StoreError};

use crate::error::map;
use crate::PostgresStore;

const USER_COLUMNS: &str = "id, app_id, username, display_name, email, phone, locale, timezone, \
     avatar_url, external_id, password_hash, created_at, updated_at";
const APP_COLUMNS: &str = "id, name, key, secret_sha256, signing_key, created_at";
const DEVICE_COLUMNS: &str = "id, app_id, user_id, platform, token, topic, created_at, updated_at";

fn user_from_row(r: &PgRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        username: r.try_get(2)?,
        display_name: r.try_get(3)?,
        email: r.try_get(4)?,
        phone: r.try_get(5)?,
        locale: r.try_get(6)?,
        timezone: r.try_get(7)?,
        avatar_url: r.try_get(8)?,
        external_id: r.try_get(9)?,
        password_hash: r.try_get(10)?,
        created_at_ms: r.try_get(11)?,
        updated_at_ms: r.try_get(12)?,
    })
}

fn app_from_row(r: &PgRow) -> Result<App, sqlx::Error> {
    let digest: Vec<u8> = r.try_get(3)?;
    let mut secret_sha256 = [0u8; 32];
    if digest.len() == 32 {
        secret_sha256.copy_from_slice(&digest);
    }
    Ok(App {
        id: Id(r.try_get(0)?),
        name: r.try_get(1)?,
        key: r.try_get(2)?,
        secret_sha256,
        signing_key: r.try_get(4)?,
        created_at_ms: r.try_get(5)?,
    })
}

fn device_from_row(r: &PgRow) -> Result<Device, sqlx::Error> {
    let platform: String = r.try_get(3)?;
    Ok(Device {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        user_id: Id(r.try_get(2)?),
        platform: Platform::parse(&platform)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown platform {platform:?}").into()))?,
        token: r.try_get(4)?,
        topic: r.try_get(5)?,
        created_at_ms: r.try_get(6)?,
        updated_at_ms: r.try_get(7)?,
    })
}

fn rows<T>(rows: Vec<PgRow>, f: fn(&PgRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
    rows.iter().map(|r| f(r).map_err(map)).collect()
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(map)
    }

    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(app.id.0)
        .bind(&app.name)
        .bind(&app.key)
        .bind(&app.secret_sha256[..])
        .bind(&app.signing_key)
        .bind(app.created_at_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn app_by_id(&self, id: Id) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(app_from_row).transpose().map_err(map)
    }

    async fn app_by_key(&self, key: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(app_from_row).transpose().map_err(map)
    }

    async fn list_apps(&self) -> StoreResult<Vec<App>> {
        let all = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows(all, app_from_row)
    }

    async fn insert_user(&self, u: &UserRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(u.id.0)
        .bind(u.app_id.0)
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(&u.email)
        .bind(&u.phone)
        .bind(&u.locale)
        .bind(&u.timezone)
        .bind(&u.avatar_url)
        .bind(&u.external_id)
        .bind(&u.password_hash)
        .bind(u.created_at_ms)
        .bind(u.updated_at_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }

    async fn user_by_id(&self, app: Id, id: Id) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND id = $2"
        ))
        .bind(app.0)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(user_from_row).transpose().map_err(map)
    }

    async fn user_by_username(&self, app: Id, username: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND username = $2"
        ))
        .bind(app.0)
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(user_from_row).transpose().map_err(map)
    }

    async fn users_by_ids(&self, app: Id, ids: &[Id]) -> StoreResult<Vec<UserRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
        let all = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND id = ANY($2)"
        ))
        .bind(app.0)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows(all, user_from_row)
    }

    async fn update_user(
        &self,
        app: Id,
        id: Id,
        patch: &UserPatch,
        now_ms: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(app.0)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(mut user) = row.as_ref().map(user_from_row).transpose().map_err(map)? else {
            return Ok(None);
        };
        if patch.is_empty() {
            return Ok(Some(user));
        }
        patch.apply(&mut user);
        user.updated_at_ms = now_ms;
        sqlx::query(
            "UPDATE users SET display_name = $3, email = $4, phone = $5, locale = $6, timezone = $7, \
             avatar_url = $8, updated_at = $9 WHERE app_id = $1 AND id = $2",
        )
        .bind(app.0)
        .bind(id.0)
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(&user.phone)
        .bind(&user.locale)
        .bind(&user.timezone)
        .bind(&user.avatar_url)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(Some(user))
    }

    async fn search_users(
        &self,
        app: Id,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        // The username column collates as "C", so this range is exactly the names that
        // start with prefix and it walks the (app_id, username) index.
        let low = match after {
            Some(a) if a > prefix => a.to_owned(),
            _ => prefix.to_owned(),
        };
        let op = if after.is_some_and(|a| a >= prefix) {
            ">"
        } else {
            ">="
        };
        let high = format!("{prefix}\u{7f}");
        let all = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE app_id = $1 AND username {op} $2 AND username < $3 \
             ORDER BY username LIMIT $4"
        ))
        .bind(app.0)
        .bind(low)
        .bind(high)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows(all, user_from_row)
    }

    async fn upsert_device(&self, d: &NewDevice) -> StoreResult<Device> {
        let row = sqlx::query(&format!(
            "INSERT INTO devices (id, app_id, user_id, platform, token, topic, disabled_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7) \
             ON CONFLICT (app_id, platform, token) DO UPDATE SET \
               user_id = excluded.user_id, topic = excluded.topic, disabled_at = NULL, updated_at = excluded.updated_at \
             RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(d.id.0)
        .bind(d.app_id.0)
        .bind(d.user_id.0)
        .bind(d.platform.as_str())
        .bind(&d.token)
        .bind(&d.topic)
        .bind(d.now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        device_from_row(&row).map_err(map)
    }

    async fn list_devices(&self, app: Id, user: Id) -> StoreResult<Vec<Device>> {
        let all = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = $1 AND user_id = $2 AND disabled_at IS NULL ORDER BY id"
        ))
        .bind(app.0)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows(all, device_from_row)
    }

    async fn delete_device(&self, app: Id, user: Id, id: Id) -> StoreResult<bool> {
        sqlx::query("DELETE FROM devices WHERE app_id = $1 AND user_id = $2 AND id = $3")
            .bind(app.0)
            .bind(user.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map)
    }

    async fn disable_device(
        &self,
        app: Id,
        platform: Platform,
        token: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE devices SET disabled_at = $4, updated_at = $4 \
             WHERE app_id = $1 AND platform = $2 AND token = $3 AND disabled_at IS NULL",
        )
        .bind(app.0)
        .bind(platform.as_str())
        .bind(token)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(map)
    }

    async fn active_devices_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<Device>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = users.iter().map(|i| i.0).collect();
        let all = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = $1 AND user_id = ANY($2) AND disabled_at IS NULL ORDER BY id"
        ))
        .bind(app.0)
        .bind(&users)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows(all, device_from_row)
    }

    async fn preferences_of(&self, app: Id, users: &[Id]) -> StoreResult<Vec<(Id, Preferences)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = users.iter().map(|i| i.0).collect();
        let all = sqlx::query(
            "SELECT user_id, body FROM preferences WHERE app_id = $1 AND user_id = ANY($2)",
        )
        .bind(app.0)
        .bind(&users)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        all.iter()
            .map(|r| {
                let id: i64 = r.try_get(0).map_err(map)?;
                let body: serde_json::Value = r.try_get(1).map_err(map)?;
                serde_json::from_value(body)
                    .map(|p| (Id(id), p))
                    .map_err(|e| StoreError::Backend(format!("stored preferences: {e}")))
            })
            .collect()
    }

    async fn preferences(&self, app: Id, user: Id) -> StoreResult<Option<Preferences>> {
        let row = sqlx::query("SELECT body FROM preferences WHERE app_id = $1 AND user_id = $2")
            .bind(app.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        let Some(row) = row else { return Ok(None) };
        let body: serde_json::Value = row.try_get(0).map_err(map)?;
        serde_json::from_value(body)
            .map(Some)
            .map_err(|e| StoreError::Backend(format!("stored preferences: {e}")))
    }

    async fn put_preferences(
        &self,
        app: Id,
        user: Id,
        prefs: &Preferences,
        now_ms: i64,
    ) -> StoreResult<()> {
        let body = serde_json::to_value(prefs).map_err(|e| StoreError::Backend(e.to_string()))?;
        sqlx::query(
            "INSERT INTO preferences (user_id, app_id, body, updated_at) \
             SELECT id, app_id, $3, $4 FROM users WHERE app_id = $1 AND id = $2 \
             ON CONFLICT (user_id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(app.0)
        .bind(user.0)
        .bind(body)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(map)
    }
}
