//! Hydrated home-feed reads over HTTP against a real `tidings serve` (embedded
//! default: SQLite, in-memory feed cache): `GET /v1/me/feed?limit=20` as many
//! readers, first the peak with a closed loop, then latency at fixed offered rates of
//! one quarter and one half of that peak (open loop, timed from each request's
//! scheduled start).
//!
//! Setup, all through the public API: `--users` users created by the app backend (a
//! token minted for each), a follow graph where each user follows
//! `--follow-min..=--follow-max` others chosen by Zipf-like popularity (weight
//! rank^-popularity, so a few authors are followed by most readers), one read of every
//! feed (it records the reader as active and materializes the feed cache, as a
//! returning user's first read does), then `--posts-per-user` posts by everyone,
//! fanned out by the server's own worker. Before measuring, a sample of readers'
//! first pages is compared with what they must be (the newest posts of whom they
//! follow and their own); the wait for that is the fan-out's drain time.
//!
//! No author reaches the celebrity threshold here (10,000 followers), so the reads do
//! not merge celebrity posts; every page comes from the feed cache.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use serde_json::{json, Value};
use tidings_client::{Client, CreateUser};

use crate::measure::{closed_loop, open_loop};
use crate::server::ServerProcess;

use super::graph;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Users (each one a reader and an author).
    #[arg(long, default_value_t = 3_000)]
    users: usize,
    /// Fewest authors a user follows.
    #[arg(long, default_value_t = 20)]
    follow_min: usize,
    /// Most authors a user follows.
    #[arg(long, default_value_t = 50)]
    follow_max: usize,
    /// Zipf exponent of author popularity when choosing whom to follow.
    #[arg(long, default_value_t = 1.0)]
    popularity: f64,
    /// Posts each user publishes.
    #[arg(long, default_value_t = 2)]
    posts_per_user: usize,
    /// Requests in flight while setting up.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// Concurrent reads in the closed-loop phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Posts per page read.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// RNG seed of the follow graph.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Extra server environment, as NAME=VALUE (repeatable).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
}

fn parse_id(s: &str) -> anyhow::Result<i64> {
    s.parse().with_context(|| format!("post id {s}"))
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let load_average_at_start = super::load_average();
    anyhow::ensure!(
        args.follow_min <= args.follow_max && args.follow_max < args.users,
        "cannot follow that many"
    );
    let env: Vec<(String, String)> = args
        .server_env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(&env_refs)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections.max(args.setup_concurrency) * 2)
        .build()?;
    let client = Client::with_http(http.clone(), &server.base_url);
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    let par = args.setup_concurrency.max(1);

    // Users and their tokens.
    let started = Instant::now();
    let created: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..args.users)
        .map(|i| {
            let app = app.clone();
            async move {
                let user = app
                    .create_user(&CreateUser {
                        username: Some(format!("reader{i}")),
                        ..Default::default()
                    })
                    .await?;
                let token = app.mint_token(&user.id, None).await?.token;
                Ok((user.id, token))
            }
        })
        .buffered(par)
        .collect()
        .await;
    let users: Vec<(String, String)> = created.into_iter().collect::<anyhow::Result<_>>()?;
    let users_seconds = started.elapsed().as_secs_f64();
    eprintln!("{} users in {users_seconds:.1} s", users.len());

    // Whom each user follows.
    let mut rng = graph::rng(args.seed, 3);
    let weights: Vec<f64> = (0..args.users)
        .map(|rank| (rank as f64 + 1.0).powf(-args.popularity))
        .collect();
    let popular = WeightedIndex::new(&weights)?;
    let following: Vec<Vec<usize>> = (0..args.users)
        .map(|reader| {
            let k = rng.gen_range(args.follow_min..=args.follow_max);
            let mut chosen = HashSet::with_capacity(k);
            while chosen.len() < k {
                let author = popular.sample(&mut rng);
                if author != reader {
                    chosen.insert(author);
                }
            }
            let mut list: Vec<usize> = chosen.into_iter().collect();
            list.sort_unstable();
            list
        })
        .collect();
    let follows: Vec<(usize, usize)> = following
        .iter()
        .enumerate()
        .flat_map(|(r, list)| list.iter().map(move |a| (r, *a)))
        .collect();
    let mut followers = vec![0usize; args.users];
    for (_, a) in &follows {
        followers[*a] += 1;
    }
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(follows.iter().copied())
        .map(|(r, a)| {
            let reader = client.as_user(&users[r].1);
            let author = users[a].0.clone();
            async move { reader.follow(&author).await }
        })
        .buffer_unordered(par)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        bail!(
            "{failed} follows failed, e.g. {:?}",
            results.iter().find(|r| r.is_err())
        );
    }
    let follows_seconds = started.elapsed().as_secs_f64();
    eprintln!("{} follows in {follows_seconds:.1} s", follows.len());

    // One read each: active, and the feed cache materialized.
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(users.iter())
        .map(|(_, token)| {
            let reader = client.as_user(token);
            async move { reader.feed(Some(args.limit as u32), None).await }
        })
        .buffer_unordered(par)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let first_reads_seconds = started.elapsed().as_secs_f64();

    // Posts: round after round, every user once per round.
    let started = Instant::now();
    let jobs: Vec<(usize, usize)> = (0..args.posts_per_user)
        .flat_map(|p| (0..args.users).map(move |u| (p, u)))
        .collect();
    let published: Vec<anyhow::Result<(usize, i64)>> = futures::stream::iter(jobs)
        .map(|(p, u)| {
            let author = client.as_user(&users[u].1);
            async move {
                let post = author
                    .post(&format!("post {p} of reader {u}: hello, feed"), None)
                    .await?;
                Ok((u, parse_id(&post.id)?))
            }
        })
        .buffer_unordered(par)
        .collect()
        .await;
    let mut posts_by: Vec<Vec<i64>> = vec![Vec::new(); args.users];
    for r in published {
        let (u, id) = r?;
        posts_by[u].push(id);
    }
    let posts_seconds = started.elapsed().as_secs_f64();
    let posts_total = args.users * args.posts_per_user;
    eprintln!("{posts_total} posts in {posts_seconds:.1} s");

    // Wait for fan-out: a sample of readers' first pages must be exactly the newest
    // posts of whom they follow and their own.
    let started = Instant::now();
    let step = (args.users / 100).max(1);
    let sample: Vec<usize> = (0..args.users).step_by(step).collect();
    let expected: Vec<Vec<i64>> = sample
        .iter()
        .map(|r| {
            let mut ids: Vec<i64> = following[*r]
                .iter()
                .chain(std::iter::once(r))
                .flat_map(|a| posts_by[*a].iter().copied())
                .collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.truncate(args.limit);
            ids
        })
        .collect();
    let mut matched = 0;
    while started.elapsed() < Duration::from_secs(120) {
        matched = 0;
        for (r, want) in sample.iter().zip(&expected) {
            let page = client
                .as_user(&users[*r].1)
                .feed(Some(args.limit as u32), None)
                .await?;
            let got: Vec<i64> = page
                .items
                .iter()
                .map(|p| parse_id(&p.id))
                .collect::<anyhow::Result<_>>()?;
            if got == *want {
                matched += 1;
            }
        }
        if matched == sample.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fanout_wait_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{matched}/{} sampled feeds as expected after {fanout_wait_seconds:.1} s",
        sample.len()
    );
    if matched < sample.len() {
        bail!(
            "only {matched} of {} sampled feeds were as expected",
            sample.len()
        );
    }

    let url = Arc::new(format!(
        "{}/v1/me/feed?limit={}",
        server.base_url, args.limit
    ));
    let tokens: Arc<Vec<String>> = Arc::new(users.iter().map(|(_, t)| t.clone()).collect());
    let make_op = || {
        let (http, url, tokens) = (http.clone(), url.clone(), tokens.clone());
        move |i: usize| {
            // A prime stride spreads consecutive requests over readers.
            let token = &tokens[(i * 7919) % tokens.len()];
            let request = http.get(url.as_str()).bearer_auth(token);
            async move {
                match request.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    };
    closed_loop(args.connections, Duration::from_secs(1), make_op()).await;
    let phase = Duration::from_secs(args.seconds);
    let cpu_before = (
        super::cpu_seconds(server.pid()),
        super::cpu_seconds(std::process::id()),
    );
    let peak = closed_loop(args.connections, phase, make_op()).await;
    let cores =
        |before: Option<f64>, pid: u32| Some((super::cpu_seconds(pid)? - before?) / peak.seconds);
    let server_cores = cores(cpu_before.0, server.pid());
    let loadgen_cores = cores(cpu_before.1, std::process::id());
    eprintln!(
        "peak: {:.0} reads/s, p99 {:.2} ms",
        peak.per_second, peak.p99_ms
    );
    let quarter_rate = (peak.per_second / 4.0).max(1.0) as u64;
    let half_rate = (peak.per_second / 2.0).max(1.0) as u64;
    let quarter = open_loop(quarter_rate, phase, 4096, make_op()).await;
    eprintln!(
        "quarter: p50 {:.2} ms, p99 {:.2} ms",
        quarter.p50_ms, quarter.p99_ms
    );
    let half = open_loop(half_rate, phase, 4096, make_op()).await;
    eprintln!("half: p50 {:.2} ms, p99 {:.2} ms", half.p50_ms, half.p99_ms);

    let mut sorted = followers.clone();
    sorted.sort_unstable();
    Ok(json!({
        "scenario": "GET /v1/me/feed?limit=20: hydrated home-feed reads over HTTP (embedded SQLite, in-memory feed cache)",
        "machine": super::super::machine(),
        "load_average_at_start": load_average_at_start,
        "server_pid": server.pid(),
        "server_env": args.server_env,
        "parameters": {
            "users": args.users,
            "following_per_user": [args.follow_min, args.follow_max],
            "popularity": format!("followee chosen with weight rank^-{}", args.popularity),
            "posts_per_user": args.posts_per_user,
            "limit": args.limit,
            "connections": args.connections,
            "seconds_per_phase": args.seconds,
            "seed": args.seed,
        },
        "setup": {
            "users_seconds": users_seconds,
            "follows": follows.len(),
            "follows_seconds": follows_seconds,
            "follows_per_second": follows.len() as f64 / follows_seconds,
            "followers_per_author": {
                "p50": sorted[sorted.len() / 2],
                "p99": sorted[sorted.len() * 99 / 100],
                "max": sorted.last().copied().unwrap_or(0),
            },
            "first_reads_seconds": first_reads_seconds,
            "posts": posts_total,
            "posts_seconds": posts_seconds,
            "fanout_wait_seconds": fanout_wait_seconds,
            "sampled_feeds_as_expected": format!("{matched}/{}", sample.len()),
        },
        "peak": peak,
        "cores_used_at_peak": { "server": server_cores, "load_generator": loadgen_cores },
        "at_quarter_peak": { "offered_per_second": quarter_rate, "result": quarter },
        "at_half_peak": { "offered_per_second": half_rate, "result": half },
        "targets": { "peak_reads_per_second": 30_000, "p99_ms_at_half_rate": 10.0 },
        "notes": [
            "The load generator runs on the same two cores as the server and takes a large share of them.",
            "Readers are used in turn with a prime stride; every page comes from the feed cache (no celebrities here).",
        ],
    }))
}
