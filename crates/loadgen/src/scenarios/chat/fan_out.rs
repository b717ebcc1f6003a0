//! Group fan-out: one group of `members` users, one socket each, the first `senders`
//! of them sending. A delivery is one `message` frame read by one member's socket,
//! so a message makes `members - 1` deliveries. Then the bare broadcast server
//! ([`super::raw_server`]) in the same run, driven by the same client code with
//! frames of the same size: what the transport alone allows on this machine.
//!
//! Senders are paced end to end rather than by acks (the bare server has none): each
//! keeps at most `window` messages that some other member has not yet read. This
//! keeps both servers' per-socket queues well under their limit, so neither run can
//! end in cut sockets merely because the load generator fell behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tidings_client::Client;

use super::drive::{self, Gate, Pace, Plan, Progress, SenderPlan};
use super::procfs::cpu_during;
use super::setup;
use super::wire::{self, Body, Ws};
use crate::server::ChildProcess;

#[derive(clap::Args)]
pub struct Args {
    /// Members of the group, each with one socket (the server allows 1000).
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Members that send.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Messages each sender may have that not every other member has read.
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds of sending before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Bytes of message text sent to Tidings. The bare server relays the send frame
    /// itself, so its text is padded until the frames members read are as long as
    /// Tidings' `message` frames were.
    #[arg(long, default_value_t = 64)]
    text_bytes: usize,
    #[command(flatten)]
    server: super::ServerEnv,
}

struct Measured {
    report: Value,
    deliveries_per_second: f64,
    mean_frame_bytes: f64,
}

async fn measure(
    sockets: Vec<Ws>,
    channel_id: &str,
    text_bytes: usize,
    server: (&'static str, u32),
    args: &Args,
) -> anyhow::Result<Measured> {
    let progress = Arc::new(Progress::new(args.senders, args.members));
    let channel_id: Arc<str> = channel_id.into();
    let start = Instant::now() + Duration::from_millis(50);
    let t0 = start + Duration::from_secs(args.warmup);
    let t1 = t0 + Duration::from_secs(args.seconds);
    let cpu = cpu_during(vec![server], t0, t1);
    let plans = (0..args.members)
        .map(|m| Plan {
            phase: 0,
            member: m,
            t0,
            t1,
            sender: (m < args.senders).then(|| SenderPlan {
                channel_id: channel_id.clone(),
                index: m as u32,
                pace: Pace::Window {
                    size: args.window,
                    gate: Gate::Seen(progress.clone()),
                },
                text_bytes,
            }),
            progress: Some(progress.clone()),
        })
        .collect();
    let (sockets, stats) = drive::phase(sockets, plans).await?;
    drop(sockets);
    let all = drive::total(&stats);
    let seconds = args.seconds as f64;
    let deliveries_per_second = all.deliveries_in_window as f64 / seconds;
    let mean_frame_bytes =
        all.delivered_bytes_in_window as f64 / (all.deliveries_in_window.max(1)) as f64;
    let report = json!({
        "messages_per_second": all.sent_in_window as f64 / seconds,
        "acked_per_second": all.acks_in_window as f64 / seconds,
        "deliveries_per_second": deliveries_per_second,
        "delivered_frame_bytes_mean": mean_frame_bytes,
        "text_bytes": text_bytes,
        "sent": all.sent,
        "deliveries": all.deliveries,
        "error_frames": all.errors,
        "first_error": all.first_error,
        "closed_sockets": drive::closes(&stats),
        "send_to_receive": super::latency(&all.delivery_latency),
        "cpu": cpu.await?,
    });
    Ok(Measured {
        report,
        deliveries_per_second,
        mean_frame_bytes,
    })
}

/// The Tidings run, and the server settings it used.
async fn tidings(args: &Args) -> anyhow::Result<(Measured, Value)> {
    let (server, server_env) = args.server.start()?;
    let client = Client::new(&server.base_url)?;
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    let users = setup::create_users(&app, "member", args.members).await?;
    let others: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
    let group = client
        .as_user(&users[0].token)
        .create_channel("group", Some("bench"), &others)
        .await
        .context("creating the group")?;
    let tokens: Vec<Option<&str>> = users.iter().map(|u| Some(u.token.as_str())).collect();
    let sockets = setup::connect_all(&setup::ws_url(&server.base_url), &tokens).await?;
    let measured = measure(
        sockets,
        &group.id,
        args.text_bytes,
        ("server", server.pid()),
        args,
    )
    .await?;
    Ok((measured, server_env))
}

/// The bare server, with `TCP_NODELAY` on its sockets or, like `tidings serve`
/// (axum's listener leaves it off), without.
async fn raw(args: &Args, frame_bytes: f64, nodelay: bool) -> anyhow::Result<Measured> {
    let mut argv = vec!["raw-broadcast-server"];
    if nodelay {
        argv.push("--nodelay");
    }
    let (process, line) =
        ChildProcess::start_with_args_reading_line(std::env::current_exe()?, &argv, &[])?;
    let info: Value = serde_json::from_str(&line).context("raw server address")?;
    let addr = info["addr"].as_str().context("addr")?;
    let tokens = vec![None; args.members];
    let sockets = setup::connect_all(&format!("ws://{addr}/"), &tokens).await?;
    // Same frames on the wire for members to read: pad the relayed send frame to the
    // mean length of the `message` frames Tidings delivered.
    let channel_id = "0";
    let mut sample = String::new();
    let body = Body {
        phase: 0,
        sender: 0,
        seq: 100_000,
        due_us: wire::micros(Instant::now()),
    };
    wire::send_frame(&mut sample, channel_id, body, args.text_bytes);
    let text_bytes = args.text_bytes + (frame_bytes.round() as usize).saturating_sub(sample.len());
    measure(
        sockets,
        channel_id,
        text_bytes,
        ("raw_server", process.id()),
        args,
    )
    .await
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.members >= 2 && (1..=args.members).contains(&args.senders),
        "a group needs two members and 1..=members senders"
    );
    let (tidings, server_env) = tidings(&args).await?;
    eprintln!("tidings: {}", tidings.report);
    let raw_ceiling = raw(&args, tidings.mean_frame_bytes, true).await?;
    eprintln!("raw: {}", raw_ceiling.report);
    let raw_nagle = raw(&args, tidings.mean_frame_bytes, false).await?;
    eprintln!("raw without TCP_NODELAY: {}", raw_nagle.report);
    let share = |of: &Measured| {
        tidings.deliveries_per_second / of.deliveries_per_second.max(f64::MIN_POSITIVE)
    };
    Ok(json!({
        "scenario": "group fan-out over the WebSocket (embedded SQLite), beside a bare broadcast server in the same run",
        "machine": crate::scenarios::machine(),
        "server_env": server_env,
        "members": args.members,
        "senders": args.senders,
        "window": args.window,
        "seconds": args.seconds,
        "tidings": tidings.report,
        "raw_ceiling": raw_ceiling.report,
        "ratio": share(&raw_ceiling),
        "raw_without_nodelay": raw_nagle.report,
        "ratio_to_raw_without_nodelay": share(&raw_nagle),
        "notes": [
            "a delivery is one message frame read by one member's socket; each message makes members - 1",
            "each sender keeps at most `window` messages not yet read by every other member (end-to-end pacing, the same for both servers)",
            "raw_ceiling: tokio + tokio-tungstenite broadcast server in its own process, no storage or parsing, TCP_NODELAY on its sockets; its text is padded so delivered frames match Tidings' mean message frame size",
            "raw_without_nodelay: the same server with Nagle's algorithm left on, as tidings serve leaves it (axum's TcpListener does not set TCP_NODELAY)",
            "the load generator runs on the same cores as the server (see cpu)",
        ],
    }))
}
