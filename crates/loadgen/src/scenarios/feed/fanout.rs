//! Fan-out on write, measured on the real code: `Feed::fan_out(post)` with the
//! embedded SQLite store as the store of record and a feed cache, for many posts by
//! many authors over a generated power-law follow graph (see `graph.rs`). Every
//! follower's feed is materialized and every user marked active first, so each
//! delivery the fan-out makes is a real insert into a feed cache.
//!
//! Two workloads over the same graph (celebrities never post in them; their posts are
//! not fanned out on the server, see the single celebrity post below):
//! - `uniform`: each post's author is a uniformly chosen user, so most posts reach a
//!   handful of followers and the per-post cost (store reads, the fanned-out mark)
//!   dominates;
//! - `weighted`: each post's author is chosen in proportion to their follower count
//!   (the author of a uniformly chosen follow), so the heavy-tailed authors post most
//!   and the per-delivery cost dominates.
//!
//! Each workload runs the fan-out with `--concurrency` posts at once, and again with
//! one post at a time: the latency-bound floor (a server fans out
//! `feed.fanout_concurrency` posts at once, 4 by default).
//!
//! In the same run, the classic Redis baseline from a bare client: for the same posts
//! and the same follower lists (read from the store once, up front), per delivery a
//! pipelined `ZADD feed:<follower> <id> <id>` and `ZREMRANGEBYRANK feed:<follower> 0
//! -801`. Keys carry a random prefix and are deleted afterwards (SCAN + UNLINK).
//!
//! The driver takes any `Arc<dyn FeedCache>` (`measure_cache`): the in-memory cache
//! is the only one measured today; a `RedisFeedCache` (planned in
//! `tidings-cache-redis`) plugs into `caches_to_measure` without other changes.
//!
//! Last, the time for ONE post of a celebrity (50,000+ followers) to reach every
//! follower, with the celebrity threshold raised above their count so the post is
//! fanned out, beside the same delivery through the Redis baseline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use tidings_feed::cache::{FeedCache, MemoryFeedCache};
use tidings_feed::model::{FeedEntry, PostRecord};
use tidings_feed::service::{FeedSettings, NoLive};
use tidings_feed::store::FeedStore;
use tidings_feed::{Feed, FeedParts};
use tidings_notify::queue::{QueueConfig, WorkQueue};
use tidings_platform::accounts::Ids;
use tidings_platform::auth::generate_app;
use tidings_platform::clock::{Clock, SystemClock};
use tidings_platform::config::{Config, SqliteConfig};
use tidings_platform::ids::Snowflake;
use tidings_platform::model::UserRecord;
use tidings_platform::store::AccountStore;
use tidings_platform::Id;
use tidings_store_sqlite::{SqliteQueue, SqliteStore};

use super::graph::{self, id, Graph, GraphArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    graph: GraphArgs,
    /// Posts of the `uniform` workload (authors chosen uniformly).
    #[arg(long, default_value_t = 20_000)]
    uniform_posts: usize,
    /// Posts of the `weighted` workload (authors chosen in proportion to followers).
    #[arg(long, default_value_t = 4_000)]
    weighted_posts: usize,
    /// Posts fanned out at once in the concurrent runs.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Posts of each workload fanned out one at a time, the latency-bound floor (0
    /// skips these runs).
    #[arg(long, default_value_t = 2_000)]
    sequential_posts: usize,
    /// Entries in every feed before a run, all older than the run's posts, so
    /// deliveries insert in front of them (0: the feeds start empty).
    #[arg(long, default_value_t = 0)]
    prefill: usize,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Commands per Redis pipeline (two per delivery).
    #[arg(long, default_value_t = 2_000)]
    pipeline: usize,
    /// Redis pipelines in flight, each on its own connection.
    #[arg(long, default_value_t = 4)]
    redis_in_flight: usize,
    /// Skip the Redis baseline.
    #[arg(long)]
    no_redis: bool,
}

const APP: Id = Id(1);

fn user_record(u: u32, now_ms: i64) -> UserRecord {
    UserRecord {
        id: id(u),
        app_id: APP,
        username: format!("user{u}"),
        display_name: Some(format!("User {u}")),
        email: None,
        phone: None,
        locale: None,
        timezone: None,
        avatar_url: None,
        external_id: None,
        password_hash: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    }
}

/// The server's feed settings (`Config::default()`), as `tidings serve` builds them.
fn server_settings() -> FeedSettings {
    FeedSettings::from_config(&Config::default())
}

struct Bench {
    store: Arc<SqliteStore>,
    queue: Arc<dyn WorkQueue>,
    ids: Arc<Ids>,
    clock: Arc<dyn Clock>,
    graph: Graph,
    settings: FeedSettings,
    prefill: usize,
}

/// What one fan-out run measured.
struct Figures {
    posts: usize,
    deliveries: u64,
    seconds: f64,
    /// CPU seconds this process used over the run, per second of it.
    cores_used: Option<f64>,
}

impl Figures {
    fn to_json(&self) -> Value {
        json!({
            "posts": self.posts,
            "deliveries": self.deliveries,
            "seconds": self.seconds,
            "deliveries_per_second": self.deliveries as f64 / self.seconds,
            "posts_per_second": self.posts as f64 / self.seconds,
            "cores_used": self.cores_used,
        })
    }

    fn per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds
    }
}

impl Bench {
    fn feed(&self, cache: Arc<dyn FeedCache>, settings: FeedSettings) -> Arc<Feed> {
        Arc::new(Feed::new(FeedParts {
            store: self.store.clone(),
            cache,
            // As the server sizes it. Each measurement builds a fresh one, so an
            // author's first post reads their followers from the store and only their
            // later posts find the cached audience (`distinct_authors` in the results).
            objects: Arc::new(tidings_feed::objects::MemoryObjectCache::new(
                Config::default().feed.object_cache_entries,
            )),
            accounts: self.store.clone(),
            queue: self.queue.clone(),
            live: Arc::new(NoLive),
            ids: self.ids.clone(),
            clock: self.clock.clone(),
            settings,
        }))
    }

    /// Every user's feed materialized (empty, or `prefill` old entries).
    async fn materialize(&self, cache: &dyn FeedCache) -> anyhow::Result<f64> {
        let started = Instant::now();
        let old: Vec<FeedEntry> = (0..self.prefill)
            .map(|j| FeedEntry {
                post_id: Id(j as i64 + 1),
                author_id: Id(i64::from(self.graph.users()) + 1),
            })
            .collect();
        for u in 0..self.graph.users() {
            cache.replace(id(u), &old, self.settings.cap).await?;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Stores one post per entry of `authors` (not fanned out yet), in that order.
    async fn create_posts(&self, authors: &[u32]) -> anyhow::Result<Vec<Id>> {
        let store = &self.store;
        let records: Vec<PostRecord> = authors
            .iter()
            .enumerate()
            .map(|(i, a)| PostRecord {
                id: self.ids.next_id(),
                app_id: APP,
                author_id: id(*a),
                text: format!("bench post {i}"),
                reply_to: None,
                created_at_ms: self.clock.now_ms(),
                deleted: false,
                like_count: 0,
                reply_count: 0,
                idempotency_key: None,
                fanned_out: false,
            })
            .collect();
        let ids: Vec<Id> = records.iter().map(|r| r.id).collect();
        let results: Vec<_> = futures::stream::iter(records)
            .map(|r| async move { store.create_post(&r).await })
            .buffer_unordered(256)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(ids)
    }

    fn deliveries(&self, authors: &[u32]) -> u64 {
        authors
            .iter()
            .map(|a| self.graph.followers[*a as usize].len() as u64)
            .sum()
    }

    /// Fans out one fresh post per entry of `authors` into `cache` through the real
    /// `Feed::fan_out`, `concurrency` posts at a time. Generic over the cache: any
    /// `FeedCache` (a Redis one too) is measured the same way. The post ids are
    /// returned for the Redis baseline.
    async fn measure_cache(
        &self,
        cache: Arc<dyn FeedCache>,
        settings: FeedSettings,
        authors: &[u32],
        concurrency: usize,
    ) -> anyhow::Result<(Figures, Vec<Id>)> {
        let posts = self.create_posts(authors).await?;
        let feed = self.feed(cache, settings);
        let next = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(posts.clone());
        let cpu_before = super::cpu_seconds(std::process::id());
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency.max(1) {
            let (feed, next, posts) = (feed.clone(), next.clone(), shared.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(post) = posts.get(i) else {
                        return Ok::<(), tidings_platform::Error>(());
                    };
                    feed.fan_out(*post).await?;
                }
            }));
        }
        for t in tasks {
            t.await.context("fan-out task")??;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = super::cpu_seconds(std::process::id())
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / seconds);
        Ok((
            Figures {
                posts: posts.len(),
                deliveries: self.deliveries(authors),
                seconds,
                cores_used: cpu,
            },
            posts,
        ))
    }

    /// [`Bench::measure_cache`] on a fresh in-memory cache, checking that every
    /// delivery landed (the entries added equal the deliveries, as long as no feed
    /// passed the cap).
    async fn measure_memory(
        &self,
        settings: FeedSettings,
        authors: &[u32],
        concurrency: usize,
    ) -> anyhow::Result<(Value, Figures, Vec<Id>)> {
        let cache = Arc::new(MemoryFeedCache::new(self.graph.users() as usize + 1));
        let materialize_seconds = self.materialize(cache.as_ref()).await?;
        let before = cache.entries();
        let (figures, posts) = self
            .measure_cache(cache.clone(), settings, authors, concurrency)
            .await?;
        let added = (cache.entries() - before) as u64;
        ensure!(
            added == figures.deliveries || self.prefill > 0,
            "{added} entries landed for {} deliveries",
            figures.deliveries
        );
        let mut value = figures.to_json();
        value["concurrency"] = json!(concurrency);
        value["distinct_authors"] = json!(authors
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len());
        value["entries_added"] = json!(added);
        value["materialize_seconds"] = json!(materialize_seconds);
        Ok((value, figures, posts))
    }
}

/// Caches measured besides the in-memory one: the server's own Redis feed cache,
/// under the baseline's key prefix so the baseline's clean-up removes its keys too.
async fn caches_to_measure(
    redis: Option<(&str, &str)>,
) -> anyhow::Result<Vec<(&'static str, Arc<dyn FeedCache>)>> {
    let Some((url, prefix)) = redis else {
        return Ok(Vec::new());
    };
    let cache = tidings_cache_redis::RedisFeedCache::connect(url, &format!("{prefix}cache:"))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(vec![("redis_feed_cache", Arc::new(cache))])
}

/// The classic Redis feed fan-out from a bare client.
struct RedisBaseline {
    client: redis::Client,
    prefix: String,
    pipeline: usize,
    in_flight: usize,
    cap: usize,
}

impl RedisBaseline {
    /// Delivers each `(follower, post)` pair as a pipelined ZADD + ZREMRANGEBYRANK,
    /// `pipeline / 2` deliveries per pipeline, `in_flight` pipelines at once, each on
    /// its own connection. Returns the seconds it took.
    async fn deliver(&self, work: Arc<Vec<(u32, i64)>>) -> anyhow::Result<f64> {
        let per_pipeline = (self.pipeline / 2).max(1);
        let chunks = work.len().div_ceil(per_pipeline);
        let next = Arc::new(AtomicUsize::new(0));
        let mut connections = Vec::with_capacity(self.in_flight);
        for _ in 0..self.in_flight.max(1) {
            connections.push(self.client.get_multiplexed_async_connection().await?);
        }
        let trim = -(self.cap as i64) - 1;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut conn in connections {
            let (work, next, prefix) = (work.clone(), next.clone(), self.prefix.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let c = next.fetch_add(1, Ordering::Relaxed);
                    if c >= chunks {
                        return Ok::<(), redis::RedisError>(());
                    }
                    let slice = &work[c * per_pipeline..((c + 1) * per_pipeline).min(work.len())];
                    let mut pipe = redis::pipe();
                    for (follower, post) in slice {
                        let key = format!("{prefix}feed:{}", id(*follower).0);
                        pipe.cmd("ZADD").arg(&key).arg(*post).arg(*post).ignore();
                        pipe.cmd("ZREMRANGEBYRANK")
                            .arg(&key)
                            .arg(0)
                            .arg(trim)
                            .ignore();
                    }
                    pipe.query_async::<()>(&mut conn).await?;
                }
            }));
        }
        for t in tasks {
            t.await.context("redis task")??;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// CPU seconds (user + system) the Redis server has used so far.
    async fn server_cpu_seconds(&self) -> anyhow::Result<f64> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO").arg("cpu").query_async(&mut conn).await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok(field("used_cpu_user:") + field("used_cpu_sys:"))
    }

    /// Deletes every key under the prefix; returns how many.
    async fn cleanup(&self) -> anyhow::Result<u64> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(5_000)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await?;
                deleted += n;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(deleted);
            }
        }
    }
}

/// Follower lists of `authors`, read from the store once (as a Redis fan-out worker
/// would read them from its database).
async fn follower_lists(
    store: &SqliteStore,
    authors: impl Iterator<Item = u32>,
) -> anyhow::Result<HashMap<u32, Vec<u32>>> {
    let mut lists = HashMap::new();
    for author in authors {
        if lists.contains_key(&author) {
            continue;
        }
        let mut list = Vec::new();
        let mut after = None;
        loop {
            let page = store.followers(APP, id(author), after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user_id);
            list.extend(page.iter().map(|f| (f.user_id.0 - 1) as u32));
        }
        lists.insert(author, list);
    }
    Ok(lists)
}

/// The Redis deliveries of `posts` (by `authors`, in the same order).
fn redis_work(lists: &HashMap<u32, Vec<u32>>, authors: &[u32], posts: &[Id]) -> Vec<(u32, i64)> {
    let mut work = Vec::new();
    for (a, p) in authors.iter().zip(posts) {
        work.extend(lists[a].iter().map(|f| (*f, p.0)));
    }
    work
}

/// The result's name: `feed_fanout`, or `feed_fanout_prefill<N>` for prefilled feeds.
pub fn result_name(args: &Args) -> String {
    if args.prefill == 0 {
        "feed_fanout".to_owned()
    } else {
        format!("feed_fanout_prefill{}", args.prefill)
    }
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let load_average_at_start = super::load_average();
    let settings = server_settings();
    let started = Instant::now();
    let mut rng = graph::rng(args.graph.seed, 1);
    let graph = Graph::generate(&args.graph, &mut rng)?;
    eprintln!(
        "graph: {} users, {} follows in {:.1} s",
        graph.users(),
        graph.edges(),
        graph.seconds
    );
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(
        &dir.path().join("feed.db"),
        &SqliteConfig::default(),
    )?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let load_started = Instant::now();
    graph.load(&store, APP, now).await?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    eprintln!("loaded into SQLite in {load_seconds:.1} s");
    // Every user of the graph is an account of the app, as on a server: fan-out
    // hydrates each post with its author.
    let accounts_started = Instant::now();
    store.insert_app(&generate_app(APP, "bench", now).0).await?;
    let results: Vec<_> = futures::stream::iter(0..graph.users())
        .map(|u| {
            let store = store.clone();
            async move { store.insert_user(&user_record(u, now)).await }
        })
        .buffer_unordered(1_024)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let accounts_seconds = accounts_started.elapsed().as_secs_f64();
    // Everyone active, so fan-out skips nobody.
    let touch_started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..graph.users())
        .map(|u| {
            let store = store.clone();
            async move { store.touch(APP, id(u), now).await }
        })
        .buffer_unordered(1_024)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let touch_seconds = touch_started.elapsed().as_secs_f64();
    let graph_description = graph.describe();
    let queue: Arc<dyn WorkQueue> = Arc::new(SqliteQueue::new(
        store.clone(),
        clock.clone(),
        QueueConfig::default(),
    ));
    let bench = Bench {
        store: store.clone(),
        queue,
        ids: Arc::new(Snowflake::new(1, clock.clone())),
        clock,
        graph,
        settings: settings.clone(),
        prefill: args.prefill,
    };
    let celebrities = bench.graph.celebrities.len() as u32;
    let n = bench.graph.users();

    // The workloads' authors, drawn once.
    let mut rng = graph::rng(args.graph.seed, 2);
    let uniform: Vec<u32> = (0..args.uniform_posts)
        .map(|_| rng.gen_range(celebrities..n))
        .collect();
    let mut cumulative = Vec::with_capacity(n as usize);
    let mut total = 0u64;
    for a in celebrities..n {
        total += bench.graph.followers[a as usize].len() as u64;
        cumulative.push(total);
    }
    let weighted: Vec<u32> = (0..args.weighted_posts)
        .map(|_| {
            let u = rng.gen_range(0..total);
            celebrities + cumulative.partition_point(|c| *c <= u) as u32
        })
        .collect();

    let redis = if args.no_redis {
        None
    } else {
        let suffix: u64 = rand::thread_rng().gen();
        Some(RedisBaseline {
            client: redis::Client::open(args.redis_url.as_str())?,
            prefix: format!("tidings-bench:{suffix:016x}:"),
            pipeline: args.pipeline,
            in_flight: args.redis_in_flight,
            cap: settings.cap,
        })
    };
    let outcome = measure_all(&bench, &args, redis.as_ref(), &uniform, &weighted).await;
    let cleaned = match &redis {
        Some(r) => Some(r.cleanup().await?),
        None => None,
    };
    let (workloads, celebrity) = outcome?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(json!({
        "scenario": "feed fan-out on write: the real Feed::fan_out into the embedded cache, beside the classic Redis fan-out from a bare client",
        "machine": super::super::machine(),
        "load_average_at_start": load_average_at_start,
        "parameters": {
            "graph": {
                "users": args.graph.users, "celebrities": args.graph.celebrities,
                "celebrity_followers": [args.graph.celebrity_min, args.graph.celebrity_max],
                "others": format!("P(k) ∝ k^-{} for k in 1..={}, followers a uniform sample of the other users", args.graph.exponent, args.graph.max_followers),
                "seed": args.graph.seed,
            },
            "feed_settings": {
                "cap": settings.cap, "celebrity_followers": settings.celebrity_followers,
                "fanout_batch": settings.fanout_batch, "inactive_after_ms": settings.inactive_after_ms,
            },
            "store": "SQLite, SqliteConfig::default() (WAL, synchronous=full, group commit, 4 readers)",
            "cache": "MemoryFeedCache, a fresh one per run, every user's feed materialized",
            "prefill": args.prefill,
            "concurrency": args.concurrency,
            "redis": if args.no_redis { Value::Null } else { json!({
                "url": args.redis_url, "commands_per_pipeline": args.pipeline,
                "pipelines_in_flight": args.redis_in_flight, "keys_deleted_after": cleaned,
            })},
        },
        "setup": {
            "graph": graph_description,
            "generate_seconds": bench.graph.seconds,
            "load_seconds": load_seconds,
            "accounts_seconds": accounts_seconds,
            "touch_all_seconds": touch_seconds,
        },
        "workloads": workloads,
        "one_celebrity_post": celebrity,
        "targets": {
            "embedded_deliveries_per_second": 1_000_000,
            "embedded_over_redis": 5.0,
        },
        "notes": [
            "Posts are stored with FeedStore::create_post before the clock starts; the clock covers Feed::fan_out only: reading the post, the author's follower count, hydrating the post for live delivery, the follower pages with their last activity, the mute check per page, the cache pushes, and the durable fanned-out mark.",
            "Every graph user is an account of the app, so fan-out's hydration finds the author and hands the view to NoLive, which drops it.",
            "deliveries = the followers of each post's author; entries_added is the count of cache entries that appeared, equal when no feed reaches the cap.",
            "The Redis baseline's clock covers building and sending the pipelines; reading the follower lists is timed apart (lists_seconds). Redis keys start empty. redis_server_cpu_seconds is the server's own CPU time over the same interval (INFO cpu), shared Redis: other clients' work would count too.",
            "One machine, two cores: SQLite's reader and writer threads, the fan-out tasks and Redis share them. cores_used is this process's CPU time over the run's wall time (2.0 = both cores).",
        ],
    }))
}

type Measured = (Value, Value);

async fn measure_all(
    bench: &Bench,
    args: &Args,
    redis: Option<&RedisBaseline>,
    uniform: &[u32],
    weighted: &[u32],
) -> anyhow::Result<Measured> {
    let mut workloads = serde_json::Map::new();
    for (name, authors) in [("uniform", uniform), ("weighted", weighted)] {
        eprintln!(
            "{name}: {} posts, {} deliveries",
            authors.len(),
            bench.deliveries(authors)
        );
        let (concurrent, figures, posts) = bench
            .measure_memory(bench.settings.clone(), authors, args.concurrency)
            .await?;
        eprintln!(
            "  embedded, {} at once: {:.0} deliveries/s",
            args.concurrency,
            figures.per_second()
        );
        let sequential = if args.sequential_posts > 0 {
            let some = &authors[..args.sequential_posts.min(authors.len())];
            let (value, figures, _) = bench
                .measure_memory(bench.settings.clone(), some, 1)
                .await?;
            eprintln!(
                "  embedded, one at a time: {:.0} deliveries/s",
                figures.per_second()
            );
            value
        } else {
            Value::Null
        };
        let mut other_caches = serde_json::Map::new();
        let redis_target = redis
            .as_ref()
            .map(|r| (args.redis_url.as_str(), r.prefix.as_str()));
        for (cache_name, cache) in caches_to_measure(redis_target).await? {
            bench.materialize(cache.as_ref()).await?;
            let (figures, _) = bench
                .measure_cache(cache, bench.settings.clone(), authors, args.concurrency)
                .await?;
            other_caches.insert(cache_name.to_owned(), figures.to_json());
        }
        let (baseline, ratio) = match redis {
            Some(r) => {
                let lists_started = Instant::now();
                let lists = follower_lists(&bench.store, authors.iter().copied()).await?;
                let lists_seconds = lists_started.elapsed().as_secs_f64();
                for (a, list) in &lists {
                    ensure!(
                        *list == bench.graph.followers[*a as usize],
                        "the store's followers of {a} differ from the graph"
                    );
                }
                let work = Arc::new(redis_work(&lists, authors, &posts));
                let cpu_before = r.server_cpu_seconds().await?;
                let client_before = super::cpu_seconds(std::process::id());
                let seconds = r.deliver(work.clone()).await?;
                let client_cpu = super::cpu_seconds(std::process::id())
                    .zip(client_before)
                    .map(|(after, before)| after - before);
                let redis_cpu = r.server_cpu_seconds().await? - cpu_before;
                let deleted = r.cleanup().await?;
                let rate = work.len() as f64 / seconds;
                eprintln!("  redis baseline: {rate:.0} deliveries/s");
                (
                    json!({
                        "posts": posts.len(), "deliveries": work.len(), "commands": work.len() * 2,
                        "seconds": seconds, "deliveries_per_second": rate,
                        "lists_seconds": lists_seconds, "keys_deleted": deleted,
                        "redis_server_cpu_seconds": redis_cpu,
                        "client_cpu_seconds": client_cpu,
                    }),
                    json!(figures.per_second() / rate),
                )
            }
            None => (Value::Null, Value::Null),
        };
        workloads.insert(
            name.to_owned(),
            json!({
                "authors": if name == "uniform" { "uniform over non-celebrities" } else { "in proportion to follower count, non-celebrities" },
                "embedded": { "concurrent": concurrent, "one_at_a_time": sequential },
                "other_caches": other_caches,
                "redis_baseline": baseline,
                "embedded_over_redis": ratio,
            }),
        );
    }

    // One post of the first celebrity, fanned out with the threshold above them.
    let celebrity = bench.graph.celebrities[0];
    let followers = bench.graph.followers[celebrity as usize].len();
    let mut settings = bench.settings.clone();
    settings.celebrity_followers = i64::MAX;
    let (value, figures, posts) = bench.measure_memory(settings, &[celebrity], 1).await?;
    eprintln!(
        "one post to {followers} followers: {:.1} ms",
        figures.seconds * 1000.0
    );
    let redis_value = match redis {
        Some(r) => {
            let lists = follower_lists(&bench.store, [celebrity].into_iter()).await?;
            let work = Arc::new(redis_work(&lists, &[celebrity], &posts));
            let seconds = r.deliver(work.clone()).await?;
            r.cleanup().await?;
            eprintln!("  redis baseline: {:.1} ms", seconds * 1000.0);
            json!({ "deliveries": work.len(), "seconds": seconds, "ms": seconds * 1000.0 })
        }
        None => Value::Null,
    };
    let celebrity_value = json!({
        "followers": followers,
        "celebrity_followers_setting": "i64::MAX (so it is fanned out)",
        "embedded": value,
        "embedded_ms": figures.seconds * 1000.0,
        "redis_baseline": redis_value,
    });
    Ok((Value::Object(workloads), celebrity_value))
}
