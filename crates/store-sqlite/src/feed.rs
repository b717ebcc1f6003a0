//! The feed service's tables on SQLite. Counters (likes, replies, follows) change in
//! the same write job as the row they count, and only when that row really changed,
//! so they stay exact under any concurrency (the single writer runs jobs one at a
//! time).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_feed::model::{Created, Follower, PostRecord};
use tidings_feed::store::FeedStore;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::error::map;
use crate::SqliteStore;

const POST_COLUMNS: &str = "id, app_id, author_id, text, reply_to, created_at, deleted, \
     like_count, reply_count, idempotency_key, fanned_out";

fn post_from_row(r: &Row<'_>) -> rusqlite::Result<PostRecord> {
    Ok(PostRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        author_id: Id(r.get(2)?),
        text: r.get(3)?,
        reply_to: r.get::<_, Option<i64>>(4)?.map(Id),
        created_at_ms: r.get(5)?,
        deleted: r.get::<_, i64>(6)? != 0,
        like_count: r.get(7)?,
        reply_count: r.get(8)?,
        idempotency_key: r.get(9)?,
        fanned_out: r.get::<_, i64>(10)? != 0,
    })
}

fn posts_where(
    c: &Connection,
    clause: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<PostRecord>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {POST_COLUMNS} FROM feed_posts WHERE {clause}"
        ))
        .map_err(map)?;
    let rows = stmt.query_map(params, post_from_row).map_err(map)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
}

fn ids_list(ids: &[Id]) -> String {
    // Inlined rather than bound as `rarray(?)` where the planner must know the list's
    // length to choose between an index per id and a scan (posts by many authors).
    ids.iter()
        .map(|i| i.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn ids_from(c: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<Id>> {
    let mut stmt = c.prepare_cached(sql).map_err(map)?;
    let rows = stmt.query_map(params, |r| r.get(0).map(Id)).map_err(map)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
}

fn ensure_user(c: &Connection, app: Id, user: Id) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO feed_users (user_id, app_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![user.0, app.0]))
    .map_err(map)?;
    Ok(())
}

#[async_trait]
impl FeedStore for SqliteStore {
    async fn create_post(&self, post: &PostRecord) -> StoreResult<Created> {
        let p = post.clone();
        self.write_raw(move |c| {
            if let Some(key) = &p.idempotency_key {
                let first = posts_where(
                    c,
                    "app_id = ?1 AND author_id = ?2 AND idempotency_key = ?3",
                    params![p.app_id.0, p.author_id.0, key],
                )?;
                if let Some(first) = first.into_iter().next() {
                    return Ok(Created::Duplicate(first));
                }
            }
            if let Some(parent) = p.reply_to {
                let bumped = c
                    .prepare_cached(
                        "UPDATE feed_posts SET reply_count = reply_count + 1 \
                         WHERE id = ?1 AND app_id = ?2 AND deleted = 0",
                    )
                    .and_then(|mut s| s.execute(params![parent.0, p.app_id.0]))
                    .map_err(map)?;
                if bumped == 0 {
                    return Ok(Created::NoParent);
                }
            }
            c.prepare_cached(&format!(
                "INSERT INTO feed_posts ({POST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, ?7, ?8)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    p.id.0,
                    p.app_id.0,
                    p.author_id.0,
                    p.text,
                    p.reply_to.map(|r| r.0),
                    p.created_at_ms,
                    p.idempotency_key,
                    // A reply is never fanned out: mark it done from the start.
                    i64::from(p.fanned_out || p.reply_to.is_some()),
                ])
            })
            .map_err(map)?;
            let stored = posts_where(c, "id = ?1", params![p.id.0])?;
            stored
                .into_iter()
                .next()
                .map(Created::New)
                .ok_or_else(|| tidings_platform::StoreError::Backend("post vanished".into()))
        })
        .await
    }

    async fn post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>> {
        self.read_raw(move |c| {
            Ok(
                posts_where(c, "id = ?1 AND app_id = ?2", params![id.0, app.0])?
                    .into_iter()
                    .next(),
            )
        })
        .await
    }

    async fn posts_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<PostRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.iter().map(|i| i.0).collect::<Vec<_>>();
        self.read_raw(move |c| posts_where(c, "id IN rarray(?1)", params![crate::id_array(ids)]))
            .await
    }

    async fn delete_post(&self, app: Id, id: Id) -> StoreResult<Option<PostRecord>> {
        self.write_raw(move |c| {
            let Some(before) = posts_where(c, "id = ?1 AND app_id = ?2", params![id.0, app.0])?
                .into_iter()
                .next()
            else {
                return Ok(None);
            };
            if !before.deleted {
                c.prepare_cached("UPDATE feed_posts SET deleted = 1, text = '' WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id.0]))
                    .map_err(map)?;
                if let Some(parent) = before.reply_to {
                    c.prepare_cached(
                        "UPDATE feed_posts SET reply_count = MAX(reply_count - 1, 0) WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![parent.0]))
                    .map_err(map)?;
                }
            }
            Ok(posts_where(c, "id = ?1", params![id.0])?.into_iter().next())
        })
        .await
    }

    async fn mark_fanned_out(&self, id: Id) -> StoreResult<()> {
        self.write_idempotent_raw(move |c| {
            c.prepare_cached("UPDATE feed_posts SET fanned_out = 1 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id.0]))
                .map_err(map)?;
            Ok(())
        })
        .await
    }

    async fn unfanned_posts(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Id>> {
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT id FROM feed_posts WHERE fanned_out = 0 AND created_at < ?1 \
                 AND deleted = 0 AND reply_to IS NULL ORDER BY created_at LIMIT ?2",
                params![before_ms, limit],
            )
        })
        .await
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
        let list = ids_list(authors);
        self.read_raw(move |c| {
            posts_where(
                c,
                &format!(
                    "author_id IN ({list}) AND reply_to IS NULL AND deleted = 0 \
                     AND app_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                params![app.0, before.map_or(i64::MAX, |b| b.0), limit],
            )
        })
        .await
    }

    async fn replies(
        &self,
        post: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<PostRecord>> {
        self.read_raw(move |c| {
            posts_where(
                c,
                "reply_to = ?1 AND deleted = 0 AND id > ?2 ORDER BY id LIMIT ?3",
                params![post.0, after.map_or(0, |a| a.0), limit],
            )
        })
        .await
    }

    async fn follow(&self, app: Id, follower: Id, followee: Id, now_ms: i64) -> StoreResult<bool> {
        self.write_raw(move |c| {
            let added = c
                .prepare_cached(
                    "INSERT INTO feed_follows (app_id, follower_id, followee_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![app.0, follower.0, followee.0, now_ms]))
                .map_err(map)?;
            if added == 0 {
                return Ok(false);
            }
            ensure_user(c, app, follower)?;
            ensure_user(c, app, followee)?;
            c.prepare_cached("UPDATE feed_users SET following = following + 1 WHERE user_id = ?1")
                .and_then(|mut s| s.execute(params![follower.0]))
                .map_err(map)?;
            c.prepare_cached("UPDATE feed_users SET followers = followers + 1 WHERE user_id = ?1")
                .and_then(|mut s| s.execute(params![followee.0]))
                .map_err(map)?;
            Ok(true)
        })
        .await
    }

    async fn unfollow(&self, app: Id, follower: Id, followee: Id) -> StoreResult<bool> {
        self.write_raw(move |c| {
            let removed = c
                .prepare_cached(
                    "DELETE FROM feed_follows WHERE follower_id = ?1 AND followee_id = ?2 AND app_id = ?3",
                )
                .and_then(|mut s| s.execute(params![follower.0, followee.0, app.0]))
                .map_err(map)?;
            if removed == 0 {
                return Ok(false);
            }
            c.prepare_cached("UPDATE feed_users SET following = MAX(following - 1, 0) WHERE user_id = ?1")
                .and_then(|mut s| s.execute(params![follower.0]))
                .map_err(map)?;
            c.prepare_cached("UPDATE feed_users SET followers = MAX(followers - 1, 0) WHERE user_id = ?1")
                .and_then(|mut s| s.execute(params![followee.0]))
                .map_err(map)?;
            Ok(true)
        })
        .await
    }

    async fn followers(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Follower>> {
        self.read_raw(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT f.follower_id, COALESCE(u.last_active, 0) FROM feed_follows f \
                     LEFT JOIN feed_users u ON u.user_id = f.follower_id \
                     WHERE f.followee_id = ?1 AND f.app_id = ?2 AND f.follower_id > ?3 \
                     ORDER BY f.follower_id LIMIT ?4",
                )
                .map_err(map)?;
            let rows = stmt
                .query_map(
                    params![user.0, app.0, after.map_or(0, |a| a.0), limit],
                    |r| {
                        Ok(Follower {
                            user_id: Id(r.get(0)?),
                            last_active_ms: r.get(1)?,
                        })
                    },
                )
                .map_err(map)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
        })
        .await
    }

    async fn following(
        &self,
        app: Id,
        user: Id,
        after: Option<Id>,
        limit: u32,
    ) -> StoreResult<Vec<Id>> {
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT followee_id FROM feed_follows WHERE follower_id = ?1 AND app_id = ?2 \
                 AND followee_id > ?3 ORDER BY followee_id LIMIT ?4",
                params![user.0, app.0, after.map_or(0, |a| a.0), limit],
            )
        })
        .await
    }

    async fn following_with_min_followers(
        &self,
        app: Id,
        user: Id,
        min_followers: i64,
    ) -> StoreResult<Vec<Id>> {
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT f.followee_id FROM feed_follows f JOIN feed_users u ON u.user_id = f.followee_id \
                 WHERE f.follower_id = ?1 AND f.app_id = ?2 AND u.followers >= ?3 ORDER BY f.followee_id",
                params![user.0, app.0, min_followers],
            )
        })
        .await
    }

    async fn follow_counts(&self, app: Id, user: Id) -> StoreResult<(i64, i64)> {
        self.read_raw(move |c| {
            let counts = c
                .prepare_cached("SELECT followers, following FROM feed_users WHERE user_id = ?1 AND app_id = ?2")
                .and_then(|mut s| s.query_row(params![user.0, app.0], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map)?;
            Ok(counts.unwrap_or((0, 0)))
        })
        .await
    }

    async fn set_mute(
        &self,
        app: Id,
        user: Id,
        muted: Id,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.write_idempotent_raw(move |c| {
            let changed = if on {
                c.prepare_cached(
                    "INSERT INTO feed_mutes (user_id, muted_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![user.0, muted.0, now_ms]))
            } else {
                c.prepare_cached("DELETE FROM feed_mutes WHERE user_id = ?1 AND muted_id = ?2")
                    .and_then(|mut s| s.execute(params![user.0, muted.0]))
            }
            .map_err(map)?;
            let _ = app;
            Ok(changed > 0)
        })
        .await
    }

    async fn muted(&self, app: Id, user: Id) -> StoreResult<Vec<Id>> {
        let _ = app;
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT muted_id FROM feed_mutes WHERE user_id = ?1 ORDER BY muted_id",
                params![user.0],
            )
        })
        .await
    }

    async fn muting(&self, author: Id, users: &[Id]) -> StoreResult<Vec<Id>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let users = users.iter().map(|i| i.0).collect::<Vec<_>>();
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT user_id FROM feed_mutes WHERE muted_id = ?1 AND user_id IN rarray(?2) ORDER BY user_id",
                params![author.0, crate::id_array(users)],
            )
        })
        .await
    }

    async fn set_like(&self, post: Id, user: Id, on: bool, now_ms: i64) -> StoreResult<bool> {
        self.write_raw(move |c| {
            let live: bool = c
                .prepare_cached("SELECT 1 FROM feed_posts WHERE id = ?1 AND deleted = 0")
                .and_then(|mut s| s.exists(params![post.0]))
                .map_err(map)?;
            if !live {
                return Ok(false);
            }
            let (sql, delta) = if on {
                (
                    "INSERT INTO feed_likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    1,
                )
            } else {
                ("DELETE FROM feed_likes WHERE post_id = ?1 AND user_id = ?2 AND ?3 = ?3", -1)
            };
            let changed = c
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![post.0, user.0, now_ms]))
                .map_err(map)?;
            if changed == 0 {
                return Ok(false);
            }
            c.prepare_cached("UPDATE feed_posts SET like_count = MAX(like_count + ?2, 0) WHERE id = ?1")
                .and_then(|mut s| s.execute(params![post.0, delta]))
                .map_err(map)?;
            Ok(true)
        })
        .await
    }

    async fn liked(&self, user: Id, posts: &[Id]) -> StoreResult<Vec<Id>> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let posts = posts.iter().map(|i| i.0).collect::<Vec<_>>();
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT post_id FROM feed_likes WHERE user_id = ?1 AND post_id IN rarray(?2) ORDER BY post_id",
                params![user.0, crate::id_array(posts)],
            )
        })
        .await
    }

    async fn likes_of(&self, user: Id, limit: u32) -> StoreResult<Vec<Id>> {
        self.read_raw(move |c| {
            ids_from(
                c,
                "SELECT post_id FROM feed_likes WHERE user_id = ?1 LIMIT ?2",
                params![user.0, limit],
            )
        })
        .await
    }

    async fn touch(&self, app: Id, user: Id, now_ms: i64) -> StoreResult<()> {
        self.write_idempotent_raw(move |c| {
            c.prepare_cached(
                "INSERT INTO feed_users (user_id, app_id, last_active) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET last_active = MAX(last_active, excluded.last_active)",
            )
            .and_then(|mut s| s.execute(params![user.0, app.0, now_ms]))
            .map_err(map)?;
            Ok(())
        })
        .await
    }

    async fn last_active(&self, app: Id, user: Id) -> StoreResult<i64> {
        self.read_raw(move |c| {
            let v = c
                .prepare_cached(
                    "SELECT last_active FROM feed_users WHERE user_id = ?1 AND app_id = ?2",
                )
                .and_then(|mut s| s.query_row(params![user.0, app.0], |r| r.get(0)).optional())
                .map_err(map)?;
            Ok(v.unwrap_or(0))
        })
        .await
    }
}
