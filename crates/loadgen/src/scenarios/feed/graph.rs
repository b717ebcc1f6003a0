//! The generated follow graph of the fan-out scenario, and its bulk load into the
//! embedded store.
//!
//! The shape, documented so runs can be compared: `users` users (ids 1..=users); the
//! first `celebrities` of them each get a follower count drawn uniformly from
//! `celebrity_min..=celebrity_max`; every other user gets a count drawn from a
//! discrete power law, P(k) ∝ k^-exponent for k in 1..=max_followers (with the
//! defaults, exponent 2 and at most 5,000, about 99 % of authors have 1–50 followers
//! and the mean is about 5.5). Each author's followers are a uniform sample of the
//! other users. Everything comes from one seeded RNG, so the same flags give the same
//! graph.
//!
//! Loading it follow by follow through `FeedStore::follow` would be one write job per
//! edge (~700,000 savepointed jobs); instead the edges go in as multi-row INSERTs
//! through `SqliteStore::write_raw`, and the `feed_users` counts are written from the
//! exact in-memory tallies (checked against the store afterwards).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::ensure;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tidings_feed::store::FeedStore;
use tidings_platform::{Id, StoreError};
use tidings_store_sqlite::SqliteStore;

#[derive(clap::Args, Clone, Debug)]
pub struct GraphArgs {
    /// Users in the generated follow graph.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Authors with a huge following (the first user ids).
    #[arg(long, default_value_t = 3)]
    pub celebrities: u32,
    /// Fewest followers of a celebrity.
    #[arg(long, default_value_t = 50_000)]
    pub celebrity_min: u32,
    /// Most followers of a celebrity.
    #[arg(long, default_value_t = 60_000)]
    pub celebrity_max: u32,
    /// Power-law exponent of everyone else's follower count: P(k) ∝ k^-exponent.
    #[arg(long, default_value_t = 2.0)]
    pub exponent: f64,
    /// Most followers of a non-celebrity.
    #[arg(long, default_value_t = 5_000)]
    pub max_followers: u32,
    /// RNG seed: the same seed and flags give the same graph and the same posts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The follow graph, by author: user `i` (index) is `Id(i + 1)`.
pub struct Graph {
    /// Followers of each author, as user indexes, ascending.
    pub followers: Vec<Vec<u32>>,
    pub celebrities: Vec<u32>,
    pub seconds: f64,
}

pub fn id(index: u32) -> Id {
    Id(i64::from(index) + 1)
}

impl Graph {
    pub fn generate(args: &GraphArgs, rng: &mut StdRng) -> anyhow::Result<Self> {
        let started = Instant::now();
        let n = args.users;
        ensure!(
            args.celebrity_max < n && args.celebrity_min <= args.celebrity_max,
            "celebrity follower counts must fit in the user count"
        );
        ensure!(
            args.max_followers < n && args.celebrities < n,
            "too few users"
        );
        // Cumulative weights of k = 1..=max_followers, for inverse-CDF sampling.
        let mut cumulative = Vec::with_capacity(args.max_followers as usize);
        let mut total = 0.0;
        for k in 1..=args.max_followers {
            total += f64::from(k).powf(-args.exponent);
            cumulative.push(total);
        }
        let mut followers = Vec::with_capacity(n as usize);
        for author in 0..n {
            let k = if author < args.celebrities {
                rng.gen_range(args.celebrity_min..=args.celebrity_max)
            } else {
                let u = rng.gen::<f64>() * total;
                cumulative.partition_point(|c| *c < u) as u32 + 1
            };
            // k + 1 distinct users, so dropping the author themself still leaves k.
            let mut list: Vec<u32> = rand::seq::index::sample(rng, n as usize, k as usize + 1)
                .into_iter()
                .map(|i| i as u32)
                .filter(|i| *i != author)
                .take(k as usize)
                .collect();
            list.sort_unstable();
            followers.push(list);
        }
        Ok(Self {
            followers,
            celebrities: (0..args.celebrities).collect(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    pub fn users(&self) -> u32 {
        self.followers.len() as u32
    }

    pub fn edges(&self) -> u64 {
        self.followers.iter().map(|f| f.len() as u64).sum()
    }

    fn following_counts(&self) -> Vec<u32> {
        let mut following = vec![0u32; self.followers.len()];
        for list in &self.followers {
            for f in list {
                following[*f as usize] += 1;
            }
        }
        following
    }

    /// Follower-count distribution, for the result file.
    pub fn describe(&self) -> Value {
        let mut counts: Vec<usize> = self
            .followers
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.celebrities.contains(&(*i as u32)))
            .map(|(_, f)| f.len())
            .collect();
        counts.sort_unstable();
        let at = |q: f64| counts[((counts.len() - 1) as f64 * q) as usize];
        let small = counts.iter().filter(|c| **c <= 50).count();
        let following = self.following_counts();
        json!({
            "users": self.users(),
            "follows": self.edges(),
            "celebrity_followers": self.celebrities.iter().map(|c| self.followers[*c as usize].len()).collect::<Vec<_>>(),
            "others_followers": {
                "mean": counts.iter().sum::<usize>() as f64 / counts.len() as f64,
                "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999),
                "max": counts.last().copied().unwrap_or(0),
                "share_with_1_to_50": small as f64 / counts.len() as f64,
            },
            "following_mean": following.iter().map(|f| u64::from(*f)).sum::<u64>() as f64 / following.len() as f64,
            "following_max": following.iter().max().copied().unwrap_or(0),
        })
    }

    /// Writes the graph into the store: `feed_follows` rows and `feed_users` rows
    /// with exact counts, in multi-row INSERTs, then checks the counts the store
    /// reports for the celebrities and a sample of other users.
    pub async fn load(&self, store: &SqliteStore, app: Id, now_ms: i64) -> anyhow::Result<()> {
        const ROWS_PER_STATEMENT: usize = 500;
        const ROWS_PER_JOB: usize = 50_000;
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(self.edges() as usize);
        for (author, list) in self.followers.iter().enumerate() {
            edges.extend(list.iter().map(|f| (*f, author as u32)));
        }
        // The table's key order: each job appends to the b-tree instead of scattering.
        edges.sort_unstable();
        for job in edges.chunks(ROWS_PER_JOB) {
            let mut statements = Vec::new();
            for rows in job.chunks(ROWS_PER_STATEMENT) {
                let mut sql = String::from(
                    "INSERT INTO feed_follows (app_id, follower_id, followee_id, created_at) VALUES ",
                );
                for (i, (follower, followee)) in rows.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = write!(
                        sql,
                        "{sep}({},{},{},{now_ms})",
                        app.0,
                        id(*follower).0,
                        id(*followee).0
                    );
                }
                statements.push(sql);
            }
            store
                .write_raw(move |c| {
                    for sql in &statements {
                        c.execute_batch(sql)
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                    }
                    Ok(())
                })
                .await?;
        }
        let following = self.following_counts();
        let users: Vec<u32> = (0..self.users()).collect();
        for job in users.chunks(ROWS_PER_JOB) {
            let mut statements = Vec::new();
            for rows in job.chunks(ROWS_PER_STATEMENT) {
                let mut sql = String::from(
                    "INSERT INTO feed_users (user_id, app_id, followers, following, last_active) VALUES ",
                );
                for (i, u) in rows.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = write!(
                        sql,
                        "{sep}({},{},{},{},0)",
                        id(*u).0,
                        app.0,
                        self.followers[*u as usize].len(),
                        following[*u as usize]
                    );
                }
                statements.push(sql);
            }
            store
                .write_raw(move |c| {
                    for sql in &statements {
                        c.execute_batch(sql)
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                    }
                    Ok(())
                })
                .await?;
        }
        let rows: i64 = store
            .write_raw(|c| {
                c.query_row("SELECT count(*) FROM feed_follows", [], |r| r.get(0))
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await?;
        ensure!(rows as u64 == self.edges(), "follows in the store: {rows}");
        let step = (self.users() / 100).max(1);
        for u in self
            .celebrities
            .iter()
            .copied()
            .chain((0..self.users()).step_by(step as usize))
        {
            let counts = store.follow_counts(app, id(u)).await?;
            ensure!(
                counts
                    == (
                        self.followers[u as usize].len() as i64,
                        i64::from(following[u as usize])
                    ),
                "counts of user {u} in the store: {counts:?}"
            );
        }
        Ok(())
    }
}

/// A seeded RNG for one purpose, so adding draws for one does not shift another.
pub fn rng(seed: u64, purpose: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
