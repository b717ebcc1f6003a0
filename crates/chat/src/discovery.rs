//! Which gateway a client should connect to: every node announces its public URL
//! and socket count with a time to live; a client is sent to the least-loaded live
//! node.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use tidings_platform::store::StoreResult;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub node: u16,
    pub url: String,
    pub connections: u64,
}

#[async_trait]
pub trait GatewayRegistry: Send + Sync + 'static {
    /// Announces (or refreshes) a node until `expires_ms`.
    async fn announce(&self, info: &NodeInfo, expires_ms: i64) -> StoreResult<()>;
    /// A node that stops leaves at once.
    async fn withdraw(&self, node: u16) -> StoreResult<()>;
    /// Nodes whose announcement has not expired.
    async fn live_nodes(&self, now_ms: i64) -> StoreResult<Vec<NodeInfo>>;
}

/// The least-loaded live node's URL.
pub fn least_loaded(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes.iter().min_by_key(|n| (n.connections, n.node))
}

/// One process: the registry is this node alone.
#[derive(Default)]
pub struct MemoryRegistry {
    nodes: Mutex<HashMap<u16, (NodeInfo, i64)>>,
}

#[async_trait]
impl GatewayRegistry for MemoryRegistry {
    async fn announce(&self, info: &NodeInfo, expires_ms: i64) -> StoreResult<()> {
        self.nodes
            .lock()
            .insert(info.node, (info.clone(), expires_ms));
        Ok(())
    }

    async fn withdraw(&self, node: u16) -> StoreResult<()> {
        self.nodes.lock().remove(&node);
        Ok(())
    }

    async fn live_nodes(&self, now_ms: i64) -> StoreResult<Vec<NodeInfo>> {
        let mut nodes: Vec<NodeInfo> = self
            .nodes
            .lock()
            .values()
            .filter(|(_, expires)| *expires > now_ms)
            .map(|(info, _)| info.clone())
            .collect();
        nodes.sort_by_key(|n| n.node);
        Ok(nodes)
    }
}
