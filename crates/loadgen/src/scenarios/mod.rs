pub mod chat;
pub mod feed;
pub mod me;
pub mod push;
pub mod store_write;

/// What the machine was when a result was taken, so figures are read in context.
pub fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cores": cores,
        "os": std::env::consts::OS,
        "when": unix_seconds(),
    })
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
