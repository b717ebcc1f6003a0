//! The feed service's tables on PostgreSQL. Counters change in the transaction that
//! changes the row they count, and only when a row really changed (`ON CONFLICT DO
//! NOTHING` / `DELETE` row counts), so they stay exact under concurrency.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use tidings_feed::model::{Created, Follower, PostRecord};
use tidings_feed::store::FeedStore;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::error::map;
use crate::PostgresStore;

const POST_COLUMNS: &str = "id, app_id, author_id, text, reply_to, created_at, deleted, \
     like_count, reply_count, idempotency_key, fanned_out";

fn post_from_row(r: &PgRow) -> Result<PostRecord, sqlx::Error> {
    Ok(PostRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        author_id: Id(r.try_get(2)?),
        text: r.try_get(3)?,
        reply_to: r.try_get::<Option<i64>, _>(4)?.map(Id),
        created_at_ms: r.try_get(5)?,
        deleted: r.try_get(6)?,
        like_count: r.try_get(7)?,
        reply_count: r.try_get(8)?,
        idempotency_key: r.try_get(9)?,
        fanned_out: r.try_get(10)?,
    })
}

fn posts(rows: Vec<PgRow>) -> StoreResult<Vec<PostRecord>> {
    rows.iter()
        .map(post_from_row)
        .collect::<Result<_, _>>()
        .map_err(map)
}

fn raw(ids: &[Id]) -> Vec<i64> {
    ids.iter().map(|i| i.0).collect()
}

fn ids(v: Vec<i64>) -> Vec<Id> {
    v.into_iter().map(Id).collect()
}

async fn ensure_user(tx: &mut Transaction<'_, Postgres>, app: Id, user: Id) -> StoreResult<()> {
    sqlx::query("INSERT INTO feed_users (user_id, app_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user.0)
        .bind(app.0)
        .execute(&mut **tx)
        .await
        .map_err(map)?;
    Ok(())
}

#[async_trait]
impl FeedStore for PostgresStore {
    async fn create_post(&self, p: &PostRecord) -> StoreResult<Created> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        if let Some(parent) = p.reply_to {
            let bumped = sqlx::query(
                "UPDATE feed_posts SET reply_count = reply_count + 1 \
                 WHERE id = $1 AND app_id = $2 AND NOT deleted",
            )
            .bind(parent.0)
            .bind(p.app_id.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?
            .rows_affected();
            if bumped == 0 {
                tx.rollback().await.map_err(map)?;
                return Ok(Created::NoParent);
            }
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO feed_posts ({POST_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, 0, 0, $7, $8) \
             ON CONFLICT (app_id, author_id, idempotency_key) WHERE idempotency_key IS NOT NULL \
             DO NOTHING RETURNING {POST_COLUMNS}"
        ))
        .bind(p.id.0)
        .bind(p.app_id.0)
        .bind(p.author_id.0)
        .bind(&p.text)
        .bind(p.reply_to.map(|r| r.0))
        .bind(p.created_at_ms)
        .bind(&p.idempotency_key)
        // A reply is never fanned out: done from the start.
        .bind(p.fanned_out || p.reply_to.is_some())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if let Some(row) = inserted {
            tx.commit().await.map_err(map)?;
            return Ok(Created::New(post_from_row(&row).map_err(map)?));
        }
        // The key was used before (the parent's bump goes back with the rollback).
        tx.rollback().await.map_err(map)?;
        let first = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts \
             WHERE app_id = $1 AND author_id = $2 AND idempotency_key = $3"
        ))
        .bind(p.app_id.0)
        .bind(p.author_id.0)
        .bind(&p.idempotency_key)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        Ok(Created::Duplicate(post_from_row(&first).map_err(map)?))
    }

    async fn post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts WHERE id = $1 AND app_id = $2"
        ))
        .bind(id.0)
        .bind(app.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(posts(rows)?.into_iter().next())
    }

    async fn posts_by_ids(&self, list: &[Id]) -> StoreResult<Vec<PostRecord>> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts WHERE id = ANY($1)"
        ))
        .bind(raw(list))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        posts(rows)
    }

    async fn delete_post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let before = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts WHERE id = $1 AND app_id = $2 FOR UPDATE"
        ))
        .bind(id.0)
        .bind(app.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(before) = before else {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        };
        let before = post_from_row(&before).map_err(map)?;
        if !before.deleted {
            sqlx::query("UPDATE feed_posts SET deleted = TRUE, text = '' WHERE id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            if let Some(parent) = before.reply_to {
                sqlx::query(
                    "UPDATE feed_posts SET reply_count = GREATEST(reply_count - 1, 0) WHERE id = $1",
                )
                .bind(parent.0)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
            }
        }
        let after = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(Some(post_from_row(&after).map_err(map)?))
    }

    async fn mark_fanned_out(&self, id: Id) -> StoreResult<()> {
        sqlx::query("UPDATE feed_posts SET fanned_out = TRUE WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn unfanned_posts(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Id>> {
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM feed_posts WHERE NOT fanned_out AND created_at < $1 \
             AND NOT deleted AND reply_to IS NULL ORDER BY created_at LIMIT $2",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn posts_by_authors(
        &self,
        app: Id,
        authors: &[Id],
        before: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<PostRecord>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts \
             WHERE author_id = ANY($1) AND reply_to IS NULL AND NOT deleted \
               AND app_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
        ))
        .bind(raw(authors))
        .bind(app.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        posts(rows)
    }

    async fn replies(
        &self,
        post: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<PostRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts \
             WHERE reply_to = $1 AND NOT deleted AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(post.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        posts(rows)
    }

    async fn follow(&self, app: Id, follower: Id, followee: Id, now_ms: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let added = sqlx::query(
            "INSERT INTO feed_follows (app_id, follower_id, followee_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(app.0)
        .bind(follower.0)
        .bind(followee.0)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected();
        if added == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        // Row locks in user id order, so follows between the same two users in both
        // directions at once never deadlock.
        let mut changes = [(follower, "following"), (followee, "followers")];
        changes.sort_by_key(|(user, _)| *user);
        for (user, column) in changes {
            ensure_user(&mut tx, app, user).await?;
            sqlx::query(&format!(
                "UPDATE feed_users SET {column} = {column} + 1 WHERE user_id = $1"
            ))
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn unfollow(&self, app: Id, follower: Id, followee: Id) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let removed = sqlx::query(
            "DELETE FROM feed_follows WHERE follower_id = $1 AND followee_id = $2 AND app_id = $3",
        )
        .bind(follower.0)
        .bind(followee.0)
        .bind(app.0)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected();
        if removed == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        let mut changes = [(follower, "following"), (followee, "followers")];
        changes.sort_by_key(|(user, _)| *user);
        for (user, column) in changes {
            sqlx::query(&format!(
                "UPDATE feed_users SET {column} = GREATEST({column} - 1, 0) WHERE user_id = $1"
            ))
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn followers(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Follower>> {
        let rows = sqlx::query(
            "SELECT f.follower_id, COALESCE(u.last_active, 0) FROM feed_follows f \
             LEFT JOIN feed_users u ON u.user_id = f.follower_id \
             WHERE f.followee_id = $1 AND f.app_id = $2 AND f.follower_id > $3 \
             ORDER BY f.follower_id LIMIT $4",
        )
        .bind(user.0)
        .bind(app.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| {
                Ok(Follower {
                    user_id: Id(r.try_get(0)?),
                    last_active_ms: r.try_get(1)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map)
    }

    async fn following(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT followee_id FROM feed_follows WHERE follower_id = $1 AND app_id = $2 \
             AND followee_id > $3 ORDER BY followee_id LIMIT $4",
        )
        .bind(user.0)
        .bind(app.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn following_with_min_followers(
        &self,
        app: Id,
        user: Id,
        min_followers: i64,
    ) -> StoreResult<Vec<Id>> {
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT f.followee_id FROM feed_follows f JOIN feed_users u ON u.user_id = f.followee_id \
             WHERE f.follower_id = $1 AND f.app_id = $2 AND u.followers >= $3 ORDER BY f.followee_id",
        )
        .bind(user.0)
        .bind(app.0)
        .bind(min_followers)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn follow_counts(&self, app: Id, user: Id) -> StoreResult<(i64, i64)> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT followers, following FROM feed_users WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.0)
        .bind(app.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.unwrap_or((0, 0)))
    }

    async fn set_mute(
        &self,
        _app: Id,
        user: Id,
        muted: Id,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let q = if on {
            sqlx::query(
                "INSERT INTO feed_mutes (user_id, muted_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(user.0)
            .bind(muted.0)
            .bind(now_ms)
        } else {
            sqlx::query("DELETE FROM feed_mutes WHERE user_id = $1 AND muted_id = $2")
                .bind(user.0)
                .bind(muted.0)
        };
        Ok(q.execute(&self.pool).await.map_err(map)?.rows_affected() > 0)
    }

    async fn muted(&self, _app: Id, user: Id) -> StoreResult<Vec<Id>> {
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT muted_id FROM feed_mutes WHERE user_id = $1 ORDER BY muted_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn muting(&self, author: Id, users: &[Id]) -> StoreResult<Vec<Id>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM feed_mutes WHERE muted_id = $1 AND user_id = ANY($2) ORDER BY user_id",
        )
        .bind(author.0)
        .bind(raw(users))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn set_like(&self, post: Id, user: Id, on: bool, now_ms: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        // Locking the post serializes likes of one post with its deletion.
        let live: Option<bool> =
            sqlx::query_scalar("SELECT deleted FROM feed_posts WHERE id = $1 FOR UPDATE")
                .bind(post.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        if live != Some(false) {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        let (changed, delta) = if on {
            let n = sqlx::query(
                "INSERT INTO feed_likes (post_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(post.0)
            .bind(user.0)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(map)?
            .rows_affected();
            (n, 1i64)
        } else {
            let n = sqlx::query("DELETE FROM feed_likes WHERE post_id = $1 AND user_id = $2")
                .bind(post.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
            (n, -1i64)
        };
        if changed == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE feed_posts SET like_count = GREATEST(like_count + $2, 0) WHERE id = $1",
        )
        .bind(post.0)
        .bind(delta)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn liked(&self, user: Id, list: &[Id]) -> StoreResult<Vec<Id>> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT post_id FROM feed_likes WHERE user_id = $1 AND post_id = ANY($2) ORDER BY post_id",
        )
        .bind(user.0)
        .bind(raw(list))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids(v))
    }

    async fn likes_of(&self, user: Id, limit: u32) -> StoreResult<Vec<Id>> {
        let v: Vec<i64> =
            sqlx::query_scalar("SELECT post_id FROM feed_likes WHERE user_id = $1 LIMIT $2")
                .bind(user.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map)?;
        Ok(ids(v))
    }

    async fn touch(&self, app: Id, user: Id, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO feed_users (user_id, app_id, last_active) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET last_active = GREATEST(feed_users.last_active, EXCLUDED.last_active)",
        )
        .bind(user.0)
        .bind(app.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn last_active(&self, app: Id, user: Id) -> StoreResult<i64> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT last_active FROM feed_users WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.0)
        .bind(app.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(v.unwrap_or(0))
    }
}
