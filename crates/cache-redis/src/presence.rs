//! Presence in Redis: per user, a sorted set of live sockets scored by when each
//! expires, and the time the user was last seen. A socket whose node stops
//! refreshing it (the node died) drops out by its score, with no sweeper.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;
use tidings_chat::bus::ConnId;
use tidings_chat::presence::{PresenceState, PresenceStore};
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::store_err;

/// KEYS: sockets, seen. ARGV: socket, now, expires, key ttl.
/// Answers 1 when the user had no live socket before this one.
const CONNECT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[2])
if before == 0 then return 1 else return 0 end
";

/// KEYS: sockets, seen. ARGV: socket, now. Answers 1 when no live socket is left.
const DISCONNECT: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('SET', KEYS[2], ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then return 1 else return 0 end
";

/// How long the keys of a user with no socket are kept (the last-seen time is the
/// part worth keeping).
const SEEN_TTL_MS: i64 = 90 * 24 * 3600 * 1000;

#[derive(Clone)]
pub struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    connect: Script,
    disconnect: Script,
}

impl RedisPresence {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            conn: crate::connect(url).await?,
            prefix: prefix.to_owned(),
            connect: Script::new(CONNECT),
            disconnect: Script::new(DISCONNECT),
        })
    }

    fn sockets_key(&self, user: Id) -> String {
        format!("{}presence:{user}", self.prefix)
    }

    fn seen_key(&self, user: Id) -> String {
        format!("{}seen:{user}", self.prefix)
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connect(
        &self,
        user: Id,
        conn: ConnId,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<bool> {
        let mut c = self.conn.clone();
        let was_offline: i64 = self
            .connect
            .key(self.sockets_key(user))
            .key(self.seen_key(user))
            .arg(conn.to_string())
            .arg(now_ms)
            .arg(expires_ms)
            .arg(SEEN_TTL_MS)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(was_offline == 1)
    }

    async fn refresh(
        &self,
        sockets: &[(Id, ConnId)],
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        for (user, conn) in sockets {
            let key = self.sockets_key(*user);
            pipe.zadd(&key, conn.to_string(), expires_ms)
                .ignore()
                .pexpire(&key, SEEN_TTL_MS)
                .ignore()
                .set(self.seen_key(*user), now_ms)
                .ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await.map_err(store_err)
    }

    async fn disconnect(&self, user: Id, conn: ConnId, now_ms: i64) -> StoreResult<bool> {
        let mut c = self.conn.clone();
        let gone: i64 = self
            .disconnect
            .key(self.sockets_key(user))
            .key(self.seen_key(user))
            .arg(conn.to_string())
            .arg(now_ms)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(gone == 1)
    }

    async fn states(&self, users: &[Id], now_ms: i64) -> StoreResult<Vec<PresenceState>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.zcount(self.sockets_key(*user), format!("({now_ms}"), "+inf")
                .get(self.seen_key(*user));
        }
        let mut c = self.conn.clone();
        let answers: Vec<redis::Value> = pipe.query_async(&mut c).await.map_err(store_err)?;
        let mut out = Vec::with_capacity(users.len());
        for (i, user) in users.iter().enumerate() {
            let live: i64 = redis::from_redis_value(&answers[2 * i]).map_err(store_err)?;
            let seen: Option<i64> =
                redis::from_redis_value(&answers[2 * i + 1]).map_err(store_err)?;
            let online = live > 0;
            out.push(PresenceState {
                user_id: *user,
                online,
                last_seen_ms: if online { Some(now_ms) } else { seen },
            });
        }
        Ok(out)
    }
}
