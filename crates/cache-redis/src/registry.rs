//! The live gateways, in one Redis hash: node id → its URL, socket count and when
//! its announcement expires. Expired entries are skipped on read and removed.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tidings_chat::discovery::{GatewayRegistry, NodeInfo};
use tidings_platform::store::StoreResult;

use crate::store_err;

#[derive(Serialize, Deserialize)]
struct Entry {
    url: String,
    connections: u64,
    expires_ms: i64,
}

#[derive(Clone)]
pub struct RedisRegistry {
    conn: ConnectionManager,
    key: String,
}

impl RedisRegistry {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        Ok(Self {
            conn: crate::connect(url).await?,
            key: format!("{prefix}gateways"),
        })
    }
}

#[async_trait]
impl GatewayRegistry for RedisRegistry {
    async fn announce(&self, info: &NodeInfo, expires_ms: i64) -> StoreResult<()> {
        let entry = Entry {
            url: info.url.clone(),
            connections: info.connections,
            expires_ms,
        };
        let json = serde_json::to_string(&entry)
            .map_err(|e| tidings_platform::StoreError::Backend(e.to_string()))?;
        let mut c = self.conn.clone();
        c.hset::<_, _, _, ()>(&self.key, info.node, json)
            .await
            .map_err(store_err)
    }

    async fn withdraw(&self, node: u16) -> StoreResult<()> {
        let mut c = self.conn.clone();
        c.hdel::<_, _, ()>(&self.key, node).await.map_err(store_err)
    }

    async fn live_nodes(&self, now_ms: i64) -> StoreResult<Vec<NodeInfo>> {
        let mut c = self.conn.clone();
        let all: Vec<(u16, String)> = c.hgetall(&self.key).await.map_err(store_err)?;
        let mut live = Vec::new();
        let mut expired = Vec::new();
        for (node, json) in all {
            match serde_json::from_str::<Entry>(&json) {
                Ok(e) if e.expires_ms > now_ms => live.push(NodeInfo {
                    node,
                    url: e.url,
                    connections: e.connections,
                }),
                _ => expired.push(node),
            }
        }
        if !expired.is_empty() {
            let _: Result<(), _> = c.hdel(&self.key, expired).await;
        }
        live.sort_by_key(|n| n.node);
        Ok(live)
    }
}
