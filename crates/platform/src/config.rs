//! Configuration: built-in defaults, overlaid by a TOML file, then by `TIDINGS_*`
//! environment variables, then by command-line flags.
//!
//! Every option has an environment variable: the option's path in the file, upper
//! case, sections joined by `__` (`[sqlite] readers` is `TIDINGS_SQLITE__READERS`;
//! `listen` is `TIDINGS_LISTEN`). Unknown keys in the file are errors, so a typo does
//! not silently fall back to a default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP and WebSocket listener.
    pub listen: String,
    /// Where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// `postgres://...` switches storage to PostgreSQL; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema to use (created if missing); unset means the URL's default.
    pub database_schema: Option<String>,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this installation uses.
    pub redis_prefix: String,
    pub nats_url: Option<String>,
    /// Prefix of the JetStream streams this installation uses (one per queue).
    pub nats_stream_prefix: String,
    /// 0–1023, unique per node: the node bits of every Snowflake id it makes.
    pub node_id: u16,
    /// What `/v1/ws/endpoint` hands out; default `ws://<listen>/v1/ws`.
    pub public_url: Option<String>,
    /// `text` or `json`.
    pub log_format: String,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub sqlite: SqliteConfig,
    pub postgres: PostgresConfig,
    pub notify: NotifyConfig,
    pub chat: ChatConfig,
    pub feed: FeedConfig,
    /// Provider settings (`[providers.apns] endpoint = ...`), read by the notification
    /// service.
    pub providers: Map<String, Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_schema: None,
            redis_url: None,
            redis_prefix: "tidings:".into(),
            nats_url: None,
            nats_stream_prefix: "TIDINGS".into(),
            node_id: 0,
            public_url: None,
            log_format: "text".into(),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            sqlite: SqliteConfig::default(),
            postgres: PostgresConfig::default(),
            notify: NotifyConfig::default(),
            chat: ChatConfig::default(),
            feed: FeedConfig::default(),
            providers: Map::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes; past it the answer is 413.
    pub body_bytes: usize,
    /// Longest post or message text, in characters.
    pub text_chars: usize,
    /// Largest WebSocket frame, in bytes.
    pub ws_frame_bytes: usize,
    /// Default and largest `limit` of a list.
    pub page_default: u32,
    pub page_max: u32,
    /// Requests handled at once; more wait in line (never unbounded: see `queue`).
    pub max_concurrent_requests: usize,
    /// Milliseconds a request may take before it is answered 503.
    pub request_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            text_chars: 10_000,
            ws_frame_bytes: 64 * 1024,
            page_default: 20,
            page_max: 100,
            max_concurrent_requests: 4096,
            request_timeout_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether `POST /v1/auth/signup` is open to anyone holding the app key.
    pub open_signup: bool,
    /// Lifetime of tokens from signup, login and minting (minting may ask for less).
    pub token_ttl_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Password hashes computed at once; each holds `argon2_memory_kib` and a core.
    pub max_concurrent_hashes: usize,
    /// Failed logins per account before each further failure locks it, doubling.
    pub login_free_failures: u32,
    pub login_base_delay_ms: i64,
    pub login_max_delay_ms: i64,
    /// Failed logins per client address inside `login_ip_window_ms` before it is locked.
    pub login_ip_failures: u32,
    pub login_ip_window_ms: i64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let throttle = crate::auth::ThrottleConfig::default();
        let password = crate::auth::password::PasswordConfig::default();
        Self {
            open_signup: true,
            token_ttl_secs: 30 * 24 * 3600,
            argon2_memory_kib: password.memory_kib,
            argon2_iterations: password.iterations,
            max_concurrent_hashes: password.max_concurrent,
            login_free_failures: throttle.free_failures,
            login_base_delay_ms: throttle.base_delay_ms,
            login_max_delay_ms: throttle.max_delay_ms,
            login_ip_failures: throttle.ip_failures,
            login_ip_window_ms: throttle.ip_window_ms,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// File name under `data_dir`.
    pub file: String,
    /// `full` (every commit reaches the disk before it is acknowledged) or `normal`
    /// (survives a process crash, may lose the last commits on power loss).
    pub synchronous: String,
    /// Read-only connections, each on its own thread.
    pub readers: usize,
    /// Commit many concurrent writes with one fsync. Off: one commit per write.
    pub group_commit: bool,
    /// Most writes folded into one commit.
    pub max_batch: usize,
    /// Writes waiting for the writer thread before callers are made to wait.
    pub queue_capacity: usize,
    /// Milliseconds a connection waits on a lock held by another process.
    pub busy_timeout_ms: u64,
    /// How often the write-ahead log is copied back into the database file.
    pub checkpoint_interval_ms: u64,
    /// Size (MiB) past which the write-ahead log is started over from its beginning.
    /// SQLite restarts the log only when a checkpoint has caught up with every commit
    /// at the moment a write begins, which a busy writer never allows, so without this
    /// the log grows for as long as the load lasts. The restart pauses writes for the
    /// last frames' copy and an fsync, once per this many MiB written.
    pub wal_restart_mib: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            file: "tidings.db".into(),
            synchronous: "full".into(),
            readers: 4,
            group_commit: true,
            max_batch: 1024,
            queue_capacity: 16_384,
            busy_timeout_ms: 5_000,
            checkpoint_interval_ms: 500,
            wal_restart_mib: 64,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout_ms: 5_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Worker tasks per channel queue; each works a batch at a time.
    pub workers_per_channel: usize,
    /// Deliveries a worker takes from its queue at once.
    pub batch_size: usize,
    /// Provider calls in flight at once per channel.
    pub concurrency_per_channel: usize,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (with jitter) up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How long a worker holds a claimed delivery before others may take it over.
    pub lease_ms: u64,
    /// How often due work (scheduled sends, retries, lost queue messages) is looked for.
    pub dispatch_interval_ms: u64,
    /// Per user and channel (push, sms, email): at most `rate_limit_max` deliveries per
    /// `rate_limit_window_secs`; the excess is suppressed as `rate_limited`. 0 = no limit.
    pub rate_limit_max: u32,
    pub rate_limit_window_secs: u64,
    /// Whether `priority: "high"` goes through quiet hours.
    pub high_priority_ignores_quiet_hours: bool,
    /// Recipients a request may name in `to.user_ids`.
    pub max_recipients: usize,
    /// Operator alert for dead letters: a URL that receives a JSON POST.
    pub alert_webhook_url: Option<String>,
    /// Whether an app may point its providers at its own `endpoint`.
    pub allow_endpoint_override: bool,
    /// Base URL providers call back (Twilio `StatusCallback`); default `http://<listen>`.
    pub callback_base_url: Option<String>,
    /// Where the embedded default keeps its work queues: `memory` (the rows in the
    /// SQLite file are the record, so a restart loses only hints the dispatcher
    /// re-sends) or `sqlite` (the queue too is in the file: three more writes per
    /// delivery).
    pub embedded_queue: String,
    /// How often a `/metrics` scrape re-reads the queue gauges from the store; a
    /// scrape sooner than this shows the last reading. Counting a large backlog reads
    /// every unfinished delivery, which frequent scrapers would otherwise repeat.
    pub queue_gauges_every_ms: u64,
    /// Deliveries per channel the fan-out may hand straight to this node's workers,
    /// written already claimed (one row write fewer, no queue round trip); past that
    /// they take the queue. 0 turns the hand-off off; it is always off with NATS,
    /// whose queue spreads deliveries over the nodes.
    pub local_handoff: usize,
    /// Threads of a runtime of its own for the delivery pipeline (fan-out, workers,
    /// provider connections), beside the one serving requests, so that an API call
    /// never queues behind thousands of delivery tasks. 0 runs the pipeline on the
    /// serving runtime.
    pub pipeline_threads: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            workers_per_channel: 4,
            batch_size: 256,
            concurrency_per_channel: 256,
            max_attempts: 8,
            retry_base_ms: 1_000,
            retry_max_ms: 15 * 60_000,
            lease_ms: 60_000,
            dispatch_interval_ms: 500,
            rate_limit_max: 100,
            rate_limit_window_secs: 3_600,
            high_priority_ignores_quiet_hours: true,
            max_recipients: 10_000,
            alert_webhook_url: None,
            allow_endpoint_override: true,
            callback_base_url: None,
            embedded_queue: "memory".into(),
            queue_gauges_every_ms: 1_000,
            local_handoff: 2_048,
            pipeline_threads: 2,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// How often clients should ping; a socket silent for twice this is closed.
    pub heartbeat_ms: u64,
    /// A socket that has not authenticated within this is closed.
    pub auth_timeout_ms: u64,
    /// Frames that may wait for one socket; a reader slower than that is cut (4008).
    pub outbound_queue: usize,
    /// The socket's read buffer, allocated per connection: keep it small.
    pub read_buffer_bytes: usize,
    /// Bytes written to a socket before a flush is forced.
    pub write_buffer_bytes: usize,
    /// Most bytes a socket may have unsent in its write buffer.
    pub max_write_buffer_bytes: usize,
    /// Frames a client may send per second, and in a burst, before being told off;
    /// a client that keeps flooding is closed (4029).
    pub frames_per_sec: u32,
    pub frame_burst: u32,
    /// `send`s one socket may have waiting for their commit at once.
    pub max_inflight_sends: usize,
    /// Most members of a group.
    pub max_members: u32,
    /// Messages a `sync` reads from the store at a time.
    pub sync_page: u32,
    /// How long a hole in the message log may wait for a lost event before the
    /// missing messages are read from the store.
    pub gap_timeout_ms: u64,
    /// Events the in-process bus holds for a slow node hub.
    pub bus_capacity: usize,
    /// A socket's presence entry lives this long unless its node refreshes it.
    pub presence_ttl_ms: u64,
    /// Users one socket may watch the presence of.
    pub max_watched: usize,
    /// Members with no live socket get a push notification for new messages.
    pub push_offline: bool,
    /// Channels whose member lists each node keeps in memory.
    pub member_cache: usize,
    /// Most sockets this node accepts.
    pub max_sockets: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 10_000,
            auth_timeout_ms: 10_000,
            outbound_queue: 512,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 4 * 1024,
            max_write_buffer_bytes: 1024 * 1024,
            frames_per_sec: 100,
            frame_burst: 200,
            max_inflight_sends: 64,
            max_members: 1_000,
            sync_page: 500,
            gap_timeout_ms: 250,
            bus_capacity: 65_536,
            presence_ttl_ms: 8_000,
            max_watched: 1_000,
            push_offline: true,
            member_cache: 100_000,
            max_sockets: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Post ids kept per user's feed cache; older ones are read from the store.
    pub cache_cap: usize,
    /// Feeds the embedded cache holds before dropping the least recently read.
    pub cache_max_feeds: usize,
    /// Authors with this many followers are merged in at read time, not fanned out.
    pub celebrity_followers: i64,
    /// Recent posts of a newly followed author copied into the follower's feed.
    pub follow_backfill: u32,
    /// Followers who have not read their feed for this many days are skipped by
    /// fan-out; their feed is rebuilt when they return.
    pub inactive_after_days: u32,
    /// Followers handled per fan-out step.
    pub fanout_batch: u32,
    /// Posts one server fans out at once. Each yields between steps, so requests are
    /// never starved; more than one keeps the store busy while another post waits
    /// on it.
    pub fanout_concurrency: usize,
    /// Posts, authors and social-graph entries the embedded object cache holds.
    pub object_cache_entries: usize,
    /// Readers with at most this many likes have them in one action-cache entry (one
    /// look-up per page); heavier likers are looked up per post.
    pub action_cache_likes: u32,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            cache_cap: 800,
            cache_max_feeds: 100_000,
            celebrity_followers: 10_000,
            follow_backfill: 200,
            inactive_after_days: 30,
            fanout_batch: 1_000,
            fanout_concurrency: 4,
            object_cache_entries: 200_000,
            action_cache_likes: 1_000,
        }
    }
}

/// Values given as command-line flags, which win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration from `file` (if any), the given environment and the
    /// flags. Environment variables that name no option are returned as warnings, not
    /// errors, since the environment is shared with other programs.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let defaults = serde_json::to_value(Config::default()).map_err(invalid)?;
        let mut merged = defaults.clone();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let table: toml::Table =
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?;
            merge(&mut merged, serde_json::to_value(table).map_err(invalid)?);
        }
        let mut warnings = Vec::new();
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TIDINGS_"))
            .collect();
        env.sort();
        for (key, raw) in env {
            let name = &key["TIDINGS_".len()..];
            if name == "CONFIG" || name.starts_with("TEST_") || name == "LOG" {
                continue;
            }
            let path: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
            match set_from_env(&mut merged, &defaults, &path, &raw) {
                Ok(true) => {}
                Ok(false) => warnings.push(format!("ignoring {key}: no such option")),
                Err(e) => return Err(ConfigError::Invalid(format!("{key}: {e}"))),
            }
        }
        if let Some(listen) = &overrides.listen {
            merged["listen"] = Value::String(listen.clone());
        }
        if let Some(dir) = &overrides.data_dir {
            merged["data_dir"] = Value::String(dir.to_string_lossy().into_owned());
        }
        let config: Config = serde_json::from_value(merged).map_err(invalid)?;
        config.validate()?;
        Ok((config, warnings))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id > crate::ids::MAX_NODE_ID {
            return Err(ConfigError::Invalid(format!(
                "node_id must be 0-{}",
                crate::ids::MAX_NODE_ID
            )));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid(
                    "database_url must be a postgres:// URL (leave it unset for the embedded SQLite store)".into(),
                ));
            }
        }
        if !matches!(self.sqlite.synchronous.as_str(), "full" | "normal") {
            return Err(ConfigError::Invalid(
                "sqlite.synchronous must be 'full' or 'normal'".into(),
            ));
        }
        if !matches!(self.notify.embedded_queue.as_str(), "memory" | "sqlite") {
            return Err(ConfigError::Invalid(
                "notify.embedded_queue must be 'memory' or 'sqlite'".into(),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(
                "log_format must be 'text' or 'json'".into(),
            ));
        }
        if self.notify.pipeline_threads > MAX_PIPELINE_THREADS {
            return Err(ConfigError::Invalid(format!(
                "notify.pipeline_threads must be 0-{MAX_PIPELINE_THREADS}"
            )));
        }
        let l = &self.limits;
        if l.body_bytes == 0
            || l.page_max == 0
            || l.page_default == 0
            || l.page_default > l.page_max
        {
            return Err(ConfigError::Invalid(
                "limits: body_bytes and page_max must be positive and page_default at most page_max".into(),
            ));
        }
        if self.sqlite.readers == 0
            || self.sqlite.max_batch == 0
            || self.sqlite.queue_capacity == 0
            || self.sqlite.checkpoint_interval_ms == 0
            || self.sqlite.wal_restart_mib == 0
        {
            return Err(ConfigError::Invalid(
                "sqlite: readers, max_batch, queue_capacity, checkpoint_interval_ms and wal_restart_mib must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn uses_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(&self.sqlite.file)
    }
}

/// More pipeline threads than this is a typo, not a machine.
const MAX_PIPELINE_THREADS: usize = 256;

fn invalid(e: serde_json::Error) -> ConfigError {
    ConfigError::Invalid(e.to_string())
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets `path` in `merged` from an environment string, typed like the default at that
/// path. `Ok(false)` when no such option exists. Under `providers` any path is allowed.
fn set_from_env(
    merged: &mut Value,
    defaults: &Value,
    path: &[String],
    raw: &str,
) -> Result<bool, String> {
    let free_form = path.first().is_some_and(|p| p == "providers") && path.len() > 1;
    let mut default = Some(defaults);
    for segment in path {
        default = default.and_then(|d| d.get(segment));
    }
    let value = match default {
        Some(Value::Bool(_)) => Value::Bool(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("expected true or false, got {raw:?}")),
        }),
        Some(Value::Number(_)) => {
            let n: serde_json::Number = raw
                .trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?;
            Value::Number(n)
        }
        Some(Value::Object(_)) | Some(Value::Array(_)) => {
            return Err("this option is a section; set its fields".into())
        }
        Some(Value::String(_)) | Some(Value::Null) => Value::String(raw.to_owned()),
        None if free_form => Value::String(raw.to_owned()),
        None => return Ok(false),
    };
    let mut slot = merged;
    for segment in &path[..path.len() - 1] {
        if !slot.get(segment).is_some_and(Value::is_object) {
            slot[segment.as_str()] = Value::Object(Map::new());
        }
        slot = &mut slot[segment.as_str()];
    }
    slot[path[path.len() - 1].as_str()] = value;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_server() {
        let (c, w) = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(!c.uses_postgres());
        assert!(w.is_empty());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("tidings-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "listen = '0.0.0.0:9000'\nnode_id = 3\n[sqlite]\nreaders = 2\n[providers.apns]\nendpoint = 'https://127.0.0.1:1'\n",
        )
        .unwrap();
        let (c, w) = Config::load(
            Some(&file),
            env(&[
                ("TIDINGS_NODE_ID", "9"),
                ("TIDINGS_SQLITE__GROUP_COMMIT", "false"),
                ("TIDINGS_DATABASE_URL", "postgres://localhost/test"),
                ("TIDINGS_PROVIDERS__FCM__ENDPOINT", "https://127.0.0.1:2"),
                ("TIDINGS_NO_SUCH_THING", "1"),
                ("TIDINGS_TEST_DATABASE_URL", "ignored"),
                ("HOME", "/root"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:0".into()),
                data_dir: None,
            },
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0");
        assert_eq!(c.node_id, 9);
        assert_eq!(c.sqlite.readers, 2);
        assert!(!c.sqlite.group_commit);
        assert!(c.uses_postgres());
        assert_eq!(c.providers["apns"]["endpoint"], "https://127.0.0.1:1");
        assert_eq!(c.providers["fcm"]["endpoint"], "https://127.0.0.1:2");
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let dir = std::env::temp_dir().join(format!("tidings-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(&file, "lisen = '0.0.0.0:9000'\n").unwrap();
        assert!(Config::load(Some(&file), env(&[]), &Overrides::default()).is_err());
        assert!(Config::load(
            None,
            env(&[("TIDINGS_NODE_ID", "2000")]),
            &Overrides::default()
        )
        .is_err());
        assert!(Config::load(
            None,
            env(&[("TIDINGS_NODE_ID", "abc")]),
            &Overrides::default()
        )
        .is_err());
        assert!(Config::load(
            None,
            env(&[("TIDINGS_DATABASE_URL", "mysql://x")]),
            &Overrides::default()
        )
        .is_err());
        assert!(Config::load(
            None,
            env(&[("TIDINGS_NOTIFY__PIPELINE_THREADS", "100000")]),
            &Overrides::default()
        )
        .is_err());
    }
}
