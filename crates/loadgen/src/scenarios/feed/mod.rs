//! News-feed scenarios. Each mode writes `bench-results/feed_<mode>.json`
//! (`feed_fanout_prefill<N>.json` for a fan-out run with prefilled feeds).

mod fanout;
mod graph;
mod memory;
mod reads;

use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Fan-out on write: the real `Feed::fan_out` over a generated power-law follow
    /// graph (100,000 users, 3 celebrities with 50k-60k followers) in the embedded
    /// SQLite store into the in-memory feed cache, in deliveries/s, beside the classic
    /// Redis fan-out (pipelined ZADD + ZREMRANGEBYRANK) from a bare client for the
    /// same posts and follower lists; also one post of a 50,000+-follower author.
    Fanout(fanout::Args),
    /// Memory per cached feed entry: feeds filled to the cap in a `MemoryFeedCache`,
    /// measured as the growth of the process's resident set.
    Memory(memory::Args),
    /// Hydrated `GET /v1/me/feed?limit=20` against a real server: users, follows and
    /// posts made over the API, then peak reads/s and latency at 25 % and 50 % of it.
    Reads(reads::Args),
}

/// The 1, 5 and 15 minute load averages, so a result taken on a busy machine says so.
pub fn load_average() -> Value {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|v| v.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .map_or(Value::Null, |v| serde_json::json!(v))
}

/// CPU seconds (user + system, all threads) process `pid` has used, from
/// /proc/<pid>/stat in clock ticks (100 per second on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th fields, so the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub enum Outcome {
    /// A result to write as `feed_<mode>.json`.
    Result(String, Value),
    /// A child process's measurement, printed for its parent only.
    Probe(Value),
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    Ok(match args.mode {
        Mode::Fanout(a) => Outcome::Result(fanout::result_name(&a), fanout::run(a).await?),
        Mode::Memory(a) => match memory::run(a).await? {
            memory::Outcome::Result(v) => Outcome::Result("feed_memory".to_owned(), v),
            memory::Outcome::Probe(v) => Outcome::Probe(v),
        },
        Mode::Reads(a) => Outcome::Result("feed_reads".to_owned(), reads::run(a).await?),
    })
}
