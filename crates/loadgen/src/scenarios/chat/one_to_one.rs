//! Durable one-to-one messages: `pairs` direct channels, in each one user sending
//! and the other receiving, one socket each. An ack means the message is committed
//! (group commit, fsync), so acknowledged messages/s is the durable rate.
//!
//! First the peak: every sender keeps up to `window` sends awaiting their ack.
//! Then, at fixed fractions of that peak spread evenly over the senders, the latency
//! from when each message was due (not when it went out, so a stalled sender
//! cannot hide a stall) to its ack and to the receiver's `message` frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tidings_client::Client;

use super::drive::{self, Gate, Pace, Plan, SenderPlan, Stats};
use super::procfs::cpu_during;
use super::setup::{self, SETUP_CONCURRENCY};

#[derive(clap::Args)]
pub struct Args {
    /// Direct channels, each with one sending and one receiving socket.
    #[arg(long, default_value_t = 64)]
    pairs: usize,
    /// Sends each sender keeps awaiting their ack at the peak (the server allows 64).
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Seconds of sending before the peak is measured.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 64)]
    text_bytes: usize,
    /// Fractions of the peak at which latency is measured.
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5")]
    fractions: Vec<f64>,
    #[command(flatten)]
    server: super::ServerEnv,
}

/// The figures of one phase.
fn report(stats: &[Stats], seconds: f64, cpu: Value) -> Value {
    let all = drive::total(stats);
    json!({
        "sent": all.sent,
        "sent_per_second": all.sent_in_window as f64 / seconds,
        "acked_per_second": all.acks_in_window as f64 / seconds,
        "deliveries_per_second": all.deliveries_in_window as f64 / seconds,
        "acks": all.acks,
        "deliveries": all.deliveries,
        "error_frames": all.errors,
        "first_error": all.first_error,
        "closed_sockets": drive::closes(stats),
        "send_to_ack": super::latency(&all.ack_latency),
        "send_to_receive": super::latency(&all.delivery_latency),
        "cpu": cpu,
    })
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.pairs > 0 && args.window > 0,
        "pairs and window must be positive"
    );
    let (server, server_env) = args.server.start()?;
    let client = Client::new(&server.base_url)?;
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    // Users 2i (sending) and 2i + 1 (receiving) share direct channel i.
    let users = setup::create_users(&app, "dm", args.pairs * 2).await?;
    let channels: Vec<Arc<str>> = stream::iter(0..args.pairs)
        .map(|i| {
            let from = client.as_user(&users[2 * i].token);
            let to = users[2 * i + 1].id.clone();
            async move {
                from.create_channel("direct", None, &[to.as_str()])
                    .await
                    .map(|c| Arc::<str>::from(c.id))
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let tokens: Vec<Option<&str>> = users.iter().map(|u| Some(u.token.as_str())).collect();
    let mut sockets = setup::connect_all(&setup::ws_url(&server.base_url), &tokens).await?;
    eprintln!("{} sockets ready", sockets.len());

    let plans = |phase: u32, t0: Instant, t1: Instant, pace: &dyn Fn(usize) -> Pace| {
        (0..args.pairs * 2)
            .map(|j| Plan {
                phase,
                member: j,
                t0,
                t1,
                sender: (j % 2 == 0).then(|| SenderPlan {
                    channel_id: channels[j / 2].clone(),
                    index: (j / 2) as u32,
                    pace: pace(j / 2),
                    text_bytes: args.text_bytes,
                }),
                progress: None,
            })
            .collect::<Vec<_>>()
    };

    // Peak.
    let seconds = args.seconds as f64;
    let start = Instant::now() + Duration::from_millis(50);
    let t0 = start + Duration::from_secs(args.warmup);
    let t1 = t0 + Duration::from_secs(args.seconds);
    let cpu = cpu_during(vec![("server", server.pid())], t0, t1);
    let window = args.window;
    let peak_plans = plans(0, t0, t1, &|_| Pace::Window {
        size: window,
        gate: Gate::Acks,
    });
    let (back, stats) = drive::phase(sockets, peak_plans).await?;
    sockets = back;
    let peak = report(&stats, seconds, cpu.await?);
    let peak_rate = drive::total(&stats).acks_in_window as f64 / seconds;
    eprintln!("peak: {peak}");

    // Latency at fixed offered rates.
    let mut at_rates = Vec::new();
    for (n, fraction) in args.fractions.iter().enumerate() {
        let offered = (peak_rate * fraction).max(1.0);
        let per_sender = offered / args.pairs as f64;
        let t0 = Instant::now() + Duration::from_millis(50);
        let t1 = t0 + Duration::from_secs(args.seconds);
        let cpu = cpu_during(vec![("server", server.pid())], t0, t1);
        let pairs = args.pairs as f64;
        let rate_plans = plans((n + 1) as u32, t0, t1, &|i| Pace::Rate {
            per_second: per_sender,
            // Senders take turns, so the offered load is even rather than in bursts.
            first: t0 + Duration::from_secs_f64(i as f64 / pairs / per_sender),
        });
        let (back, stats) = drive::phase(sockets, rate_plans).await?;
        sockets = back;
        let result = report(&stats, seconds, cpu.await?);
        eprintln!("at {fraction} of peak ({offered:.0}/s): {result}");
        at_rates.push(json!({
            "fraction_of_peak": fraction,
            "offered_per_second": offered,
            "result": result,
        }));
    }
    drop(sockets);

    Ok(json!({
        "scenario": "one-to-one chat over the WebSocket: direct channels, durable acks (embedded SQLite, group commit)",
        "machine": crate::scenarios::machine(),
        "server_env": server_env,
        "pairs": args.pairs,
        "sockets": args.pairs * 2,
        "window": args.window,
        "text_bytes": args.text_bytes,
        "seconds_per_phase": args.seconds,
        "peak": peak,
        "at_fixed_rates": at_rates,
        "notes": [
            "user 2i sends and user 2i+1 receives in direct channel i; one socket per user",
            "peak: each sender keeps `window` sends awaiting their ack; acked_per_second counts acks received inside the measured window",
            "latency is measured from when each message was due (open loop), to its ack at the sender and to the `message` frame at the receiver",
            "the load generator runs on the same cores as the server (see cpu)",
        ],
    }))
}
