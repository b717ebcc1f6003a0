//! Redis-backed state for clusters: what several nodes must agree on lives here, so
//! a user's rate limit is one count however many nodes send to them, a user is
//! online whichever node holds their socket, and every node knows the live gateways.

mod feed;
mod objects;
mod presence;
mod ratelimit;
mod registry;

pub use feed::RedisFeedCache;
pub use objects::RedisObjectCache;
pub use presence::RedisPresence;
pub use ratelimit::RedisRateLimiter;
pub use registry::RedisRegistry;

/// Connects a multiplexed, self-reconnecting connection.
async fn connect(url: &str) -> Result<redis::aio::ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| format!("redis url: {e}"))?;
    redis::aio::ConnectionManager::new(client)
        .await
        .map_err(|e| format!("redis: {e}"))
}

fn store_err(e: redis::RedisError) -> tidings_platform::StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        tidings_platform::StoreError::Unavailable(format!("redis: {e}"))
    } else {
        tidings_platform::StoreError::Backend(format!("redis: {e}"))
    }
}
