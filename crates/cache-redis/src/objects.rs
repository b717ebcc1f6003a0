//! The feed's object caches in Redis: plain keys with a TTL, read with one MGET and
//! written with one pipeline.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tidings_feed::objects::ObjectCache;
use tidings_platform::store::StoreResult;

use crate::store_err;

#[derive(Clone)]
pub struct RedisObjectCache {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisObjectCache {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            conn: crate::connect(url).await?,
            prefix: format!("{prefix}obj:"),
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }
}

#[async_trait]
impl ObjectCache for RedisObjectCache {
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let mut c = self.conn.clone();
        // MGET of one key answers a bare value, not a list: ask through a pipeline.
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(&full);
        let (values,): (Vec<Option<Vec<u8>>>,) =
            pipe.query_async(&mut c).await.map_err(store_err)?;
        Ok(values)
    }

    async fn put_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let ms = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(self.key(k))
                .arg(v.as_slice())
                .arg("PX")
                .arg(ms)
                .ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await.map_err(store_err)
    }

    async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let mut c = self.conn.clone();
        redis::cmd("DEL")
            .arg(&full)
            .query_async::<()>(&mut c)
            .await
            .map_err(store_err)
    }
}
