//! Chat over the WebSocket, against a real `tidings serve`: how many idle sockets a
//! node holds and what each costs in memory, durable one-to-one messages (peak and
//! latency at fixed rates), and group fan-out beside a bare broadcast server's
//! ceiling measured in the same run with the same client code.
//!
//! The client side of the hot path is raw tokio-tungstenite with one task per socket
//! and frames built and scanned as text, not `tidings-client`'s `Socket`: on two
//! shared cores every microsecond the load generator spends per frame is a
//! microsecond the server does not get.

mod connections;
mod drive;
mod fan_out;
mod one_to_one;
mod procfs;
pub mod raw_server;
mod setup;
mod wire;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Idle authenticated sockets: the server's resident memory per connection and
    /// the time to open them all (`bench-results/chat_connections.json`).
    Connections(connections::Args),
    /// Pairs of users in direct channels: peak acknowledged (durable) messages/s,
    /// then send→receive and send→ack latency at fixed fractions of that peak
    /// (`bench-results/chat_one_to_one.json`).
    OneToOne(one_to_one::Args),
    /// One group, every member a socket, a few senders: deliveries/s, beside a bare
    /// WebSocket broadcast server driven the same way (`bench-results/chat_fan_out.json`).
    FanOut(fan_out::Args),
}

/// Runs the chosen mode; the result's file name and the result.
pub async fn run(args: Args) -> anyhow::Result<(&'static str, Value)> {
    // Fix the origin of frame timestamps before any is taken.
    wire::origin();
    Ok(match args.mode {
        Mode::Connections(a) => ("chat_connections", connections::run(a).await?),
        Mode::OneToOne(a) => ("chat_one_to_one", one_to_one::run(a).await?),
        Mode::FanOut(a) => ("chat_fan_out", fan_out::run(a).await?),
    })
}

/// Server settings every chat scenario runs with. The per-socket flood limit (100
/// frames/s) is there to stop abusive clients; a load generator pipelining sends on
/// few sockets would only measure the limiter.
const SERVER_ENV: &[(&str, &str)] = &[
    ("TIDINGS_CHAT__FRAMES_PER_SEC", "1000000"),
    ("TIDINGS_CHAT__FRAME_BURST", "1000000"),
];

/// Extra server settings from the command line, as NAME=VALUE.
#[derive(clap::Args, Clone, Default)]
pub struct ServerEnv {
    /// Extra server environment, as NAME=VALUE (repeatable), on top of the raised
    /// per-socket frame limits every chat scenario uses.
    #[arg(long = "server-env")]
    server_env: Vec<String>,
}

impl ServerEnv {
    /// Starts `tidings serve` with [`SERVER_ENV`] and these; the server and the
    /// settings used, for the result, so a figure is never read without them.
    pub fn start(&self) -> anyhow::Result<(crate::server::ServerProcess, Value)> {
        let mut env: Vec<(&str, &str)> = SERVER_ENV.to_vec();
        for kv in &self.server_env {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--server-env {kv}: expected NAME=VALUE"))?;
            env.push((k, v));
        }
        let used: serde_json::Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        Ok((crate::server::ServerProcess::start(&env)?, used.into()))
    }
}

/// Percentiles of a latency histogram in microseconds, as milliseconds.
pub fn latency(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0,
    })
}
