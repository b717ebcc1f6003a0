//! `tidings-fake-apns`: the fake APNs in a process of its own, for benchmarks. Prints
//! one JSON line with what a client needs (base URL, CA, key, ids, topic) and serves
//! until killed. `--streams N` sets the advertised concurrent-stream limit.

use tidings_fakes::apns::{FakeApns, FakeApnsConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = FakeApnsConfig::for_tests()?;
    config.record = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--streams" => {
                config.max_streams = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(config.max_streams);
            }
            other => {
                anyhow::bail!("unknown argument {other}; usage: tidings-fake-apns [--streams N]")
            }
        }
    }
    let fake = FakeApns::start(config).await?;
    let c = fake.config();
    println!(
        "{}",
        serde_json::json!({
            "base_url": fake.base_url(),
            "ca_pem": fake.ca_pem(),
            "key_pem": c.private_key_pem,
            "key_id": c.key_id,
            "team_id": c.team_id,
            "topic": c.topic,
        })
    );
    // Served by the fake's own task; this process lives until it is killed.
    std::future::pending::<()>().await;
    Ok(())
}
