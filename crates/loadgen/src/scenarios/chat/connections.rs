//! Idle authenticated sockets: what each costs the server in resident memory, and
//! how long opening them all takes. The sockets belong to a few hundred users, many
//! each (a socket per device), which is also how a node fills up in practice.
//!
//! Memory is the server's `VmRSS` after the users exist and before any socket, then
//! again once every socket has been ready and idle for a moment; the difference over
//! the number of sockets is the cost of one. Idle sockets ping at the heartbeat the
//! server asks for in `ready`, as real clients do, so none is closed for silence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::stream::{self, StreamExt};
use futures::SinkExt;
use serde_json::{json, Value};
use tidings_client::Client;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::procfs::{open_files_limit, rss_bytes, CpuMeter};
use super::setup;
use super::wire::{self, Ws};

#[derive(clap::Args)]
pub struct Args {
    /// Sockets to open. The load generator holds the client end of each, so keep
    /// this under its open-files limit (`ulimit -n`).
    #[arg(long, default_value_t = 15_000)]
    sockets: usize,
    /// Users the sockets belong to, in turn.
    #[arg(long, default_value_t = 300)]
    users: usize,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds the sockets stay idle after the last is ready, before memory is read.
    #[arg(long, default_value_t = 2)]
    settle: u64,
    #[command(flatten)]
    server: super::ServerEnv,
}

/// The client's read buffer for an idle socket: it only ever reads `pong`.
const IDLE_READ_BUFFER: usize = 4 * 1024;

/// Holds a socket open, answering nothing and pinging every `heartbeat`, until told
/// to stop.
async fn idle(
    mut ws: Ws,
    heartbeat: Duration,
    mut stop: watch::Receiver<bool>,
    closed: Arc<AtomicU64>,
) {
    let mut ping = tokio::time::interval_at((Instant::now() + heartbeat).into(), heartbeat);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ping.tick() => {
                if ws.send(Message::text(wire::PING)).await.is_err() {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            msg = futures::StreamExt::next(&mut ws) => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let limit = open_files_limit();
    if let Some(limit) = limit {
        // The client end of every socket, plus the HTTP pool and a margin.
        if (args.sockets as u64) + 256 > limit {
            bail!(
                "{} sockets need more open files than this process may have ({limit}); \
                 raise it with `ulimit -n` or ask for fewer sockets",
                args.sockets
            );
        }
    }
    let (server, server_env) = args.server.start()?;
    let client = Client::new(&server.base_url)?;
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    let users = setup::create_users(&app, "device", args.users.max(1)).await?;
    let url = setup::ws_url(&server.base_url);
    // Let the set-up's HTTP connections close and the server go quiet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_bytes(server.pid())?;
    let loadgen_before = rss_bytes(std::process::id())?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let closed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let results: Vec<anyhow::Result<tokio::task::JoinHandle<()>>> = stream::iter(0..args.sockets)
        .map(|i| {
            let (url, token) = (&url, users[i % users.len()].token.as_str());
            let (stop, closed) = (stop_rx.clone(), closed.clone());
            async move {
                let (ws, ready) = wire::connect(url, Some(token), IDLE_READ_BUFFER).await?;
                let heartbeat = ready
                    .and_then(|r| r["heartbeat_ms"].as_u64())
                    .unwrap_or(10_000);
                Ok(tokio::spawn(idle(
                    ws,
                    Duration::from_millis(heartbeat),
                    stop,
                    closed,
                )))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let connect_seconds = started.elapsed().as_secs_f64();
    let mut tasks = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(task) => tasks.push(task),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let connected = tasks.len();
    eprintln!(
        "{connected} sockets ready in {connect_seconds:.1} s, {} failed",
        failures.len()
    );

    let cpu = CpuMeter::start(&[("server", server.pid()), ("loadgen", std::process::id())]);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let idle_cpu = cpu.stop();
    let rss_after = rss_bytes(server.pid())?;
    let loadgen_after = rss_bytes(std::process::id())?;
    let closed_while_idle = closed.load(Ordering::Relaxed);

    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    drop(server);

    let per =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / connected.max(1) as f64;
    failures.truncate(5);
    Ok(json!({
        "scenario": "idle authenticated WebSocket connections (embedded SQLite)",
        "machine": crate::scenarios::machine(),
        "server_env": server_env,
        "sockets_asked": args.sockets,
        "sockets_connected": connected,
        "users": users.len(),
        "connect_concurrency": args.concurrency,
        "connect_seconds": connect_seconds,
        "connects_per_second": connected as f64 / connect_seconds,
        "connect_failures": failures,
        "closed_while_idle": closed_while_idle,
        "server_rss_before_bytes": rss_before,
        "server_rss_after_bytes": rss_after,
        "server_rss_per_connection_bytes": per(rss_before, rss_after),
        "loadgen_rss_per_connection_bytes": per(loadgen_before, loadgen_after),
        "settle_seconds": args.settle,
        "cpu_while_idle": idle_cpu,
        "notes": [
            "socket i belongs to user i mod users, as if each user had many devices",
            "rss per connection = (VmRSS after all sockets are ready and idle - VmRSS before any) / sockets connected",
            "idle sockets send a ping frame every heartbeat_ms the server gives in ready",
        ],
    }))
}
