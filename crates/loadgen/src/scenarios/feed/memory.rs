//! Memory per cached feed entry in the embedded `MemoryFeedCache`: `--feeds` feeds
//! filled to the cap, and the growth of this process's resident set (VmRSS in
//! /proc/self/status) divided by the entries held.
//!
//! Each way of filling a feed runs in a fresh child process (this binary, with the
//! hidden `--probe`), so memory freed by one measurement cannot be reused by the next
//! and hide its cost. The ways:
//! - `push`: entries arrive one at a time through `push`, as fan-out delivers them
//!   (the vector grows by doubling), one feed after another;
//! - `replace`: each feed is written whole by `replace`, as a rebuild does;
//! - `replace-push`: a rebuild followed by one newly delivered post per feed.
//!
//! The delta includes everything the cache holds for those entries: the entry
//! vectors at their real capacity, the allocator's size-class rounding and metadata
//! (mimalloc, as in the server), and the per-feed map slot (user id, vector header,
//! last-read tick, and the hash table's spare capacity). The staging buffers the
//! probe fills from are allocated before the first reading.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tidings_feed::cache::{FeedCache, MemoryFeedCache};
use tidings_feed::model::FeedEntry;
use tidings_platform::Id;

#[derive(clap::Args)]
pub struct Args {
    /// Feeds filled to the cap.
    #[arg(long, default_value_t = 10_000)]
    feeds: usize,
    /// Entries per feed (the server's `feed.cache_cap`).
    #[arg(long, default_value_t = 800)]
    cap: usize,
    /// Internal: measure one way of filling in this process and print it.
    #[arg(long, hide = true, value_enum)]
    probe: Option<Fill>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Fill {
    Push,
    Replace,
    ReplacePush,
}

impl Fill {
    fn name(self) -> &'static str {
        match self {
            Fill::Push => "push",
            Fill::Replace => "replace",
            Fill::ReplacePush => "replace-push",
        }
    }
}

fn vm_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    line.split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()
        .context("VmRSS number")
}

fn user(i: usize) -> Id {
    Id(i as i64 + 1)
}

/// Runs in the child: fills the cache one way and reports the RSS growth.
async fn probe(args: &Args, fill: Fill) -> anyhow::Result<Value> {
    let author = Id(1);
    // Staging buffers first, so they are in the baseline.
    let mut round: Vec<(Id, FeedEntry)> = (0..args.feeds)
        .map(|u| {
            (
                user(u),
                FeedEntry {
                    post_id: Id(0),
                    author_id: author,
                },
            )
        })
        .collect();
    let mut whole: Vec<FeedEntry> = (0..args.cap)
        .map(|j| FeedEntry {
            post_id: Id(1_000_000 + j as i64),
            author_id: author,
        })
        .collect();
    let cache = MemoryFeedCache::new(args.feeds + 1);
    let before = vm_rss_kib()?;
    let started = Instant::now();
    match fill {
        Fill::Push => {
            // Feed after feed, oldest entry last: each push appends, so the fill is
            // quick, and the vector grows exactly as when entries arrive newest
            // first. One feed at a time, so the buffers a growing feed frees are
            // reused by the next feed's growth, as when feeds grow at different
            // times on a server (growing all feeds in lockstep would leave every
            // smaller size class freed but resident).
            let mut one = [(
                user(0),
                FeedEntry {
                    post_id: Id(0),
                    author_id: author,
                },
            )];
            for u in 0..args.feeds {
                cache.replace(user(u), &[], args.cap).await?;
                for r in 0..args.cap {
                    one[0].0 = user(u);
                    one[0].1.post_id = Id(10_000_000 - r as i64);
                    cache.push(&one, args.cap).await?;
                }
            }
        }
        Fill::Replace | Fill::ReplacePush => {
            for u in 0..args.feeds {
                for (j, e) in whole.iter_mut().enumerate() {
                    e.post_id = Id(1_000_000 + (u * args.cap + j) as i64);
                }
                cache.replace(user(u), &whole, args.cap).await?;
            }
            if matches!(fill, Fill::ReplacePush) {
                for e in round.iter_mut() {
                    e.1.post_id = Id(i64::MAX - 1);
                }
                cache.push(&round, args.cap).await?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = vm_rss_kib()?;
    let entries = cache.entries();
    let bytes = (after.saturating_sub(before) * 1024) as f64;
    let value = json!({
        "fill": fill.name(),
        "feeds": args.feeds,
        "entries": entries,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_entry": bytes / entries as f64,
        "bytes_per_full_feed": bytes / args.feeds as f64,
        "fill_seconds": seconds,
    });
    drop(cache);
    Ok(value)
}

pub enum Outcome {
    Result(Value),
    Probe(Value),
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(fill) = args.probe {
        return Ok(Outcome::Probe(probe(&args, fill).await?));
    }
    let load_average_at_start = super::load_average();
    let exe = std::env::current_exe()?;
    let mut fills = Vec::new();
    for fill in [Fill::Push, Fill::Replace, Fill::ReplacePush] {
        let output = Command::new(&exe)
            .args(["feed", "memory", "--probe", fill.name()])
            .args(["--feeds", &args.feeds.to_string()])
            .args(["--cap", &args.cap.to_string()])
            .output()
            .context("running a memory probe")?;
        if !output.status.success() {
            bail!(
                "memory probe {} failed: {}",
                fill.name(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let value: Value = serde_json::from_slice(&output.stdout).context("memory probe output")?;
        eprintln!(
            "{}: {:.1} bytes per entry",
            fill.name(),
            value["bytes_per_entry"].as_f64().unwrap_or(0.0)
        );
        fills.push(value);
    }
    let entry_size = std::mem::size_of::<FeedEntry>();
    Ok(Outcome::Result(json!({
        "scenario": "memory per cached feed entry in the embedded MemoryFeedCache (RSS growth of a fresh process per fill)",
        "machine": super::super::machine(),
        "load_average_at_start": load_average_at_start,
        "parameters": { "feeds": args.feeds, "cap": args.cap, "allocator": "mimalloc (as tidings serve)" },
        "feed_entry_size_bytes": entry_size,
        "fills": fills,
        "notes": [
            "bytes_per_entry = (VmRSS after - VmRSS before) / entries held; it includes the entry vectors at their real capacity, allocator rounding and metadata, and each feed's map slot, spread over its entries.",
            "push: vectors grow by doubling, so an 800-entry feed sits in a 1,024-entry allocation.",
            "replace: a rebuilt feed's vector is exactly as long as its entries.",
            "replace-push: the first post delivered into a full rebuilt feed makes the vector grow from 800 to 1,600 entries of capacity, and truncating back to 800 keeps that capacity.",
        ],
    })))
}
