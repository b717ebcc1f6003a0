//! Building and running one node.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tidings_platform::accounts::Accounts;
use tidings_platform::clock::{Clock, SystemClock};
use tidings_platform::config::Config;
use tidings_platform::ids::Snowflake;
use tidings_platform::model::AppCredentials;
use tokio::net::TcpListener;

use tidings_cache_redis::{
    RedisFeedCache, RedisObjectCache, RedisPresence, RedisRateLimiter, RedisRegistry,
};
use tidings_chat::bus::{ChatBus, InProcessBus};
use tidings_chat::discovery::{GatewayRegistry, MemoryRegistry};
use tidings_chat::hub::{Hub, HubConfig};
use tidings_chat::members::MemberCache;
use tidings_chat::presence::{MemoryPresence, PresenceStore};
use tidings_chat::service::ChatSettings;
use tidings_chat::{Chat, ChatParts};
use tidings_feed::objects::{MemoryObjectCache, ObjectCache};
use tidings_notify::metrics::NotifyMetrics;
use tidings_notify::ratelimit::{MemoryRateLimiter, RateLimiter};
use tidings_notify::{Notifier, NotifierParts};
use tidings_queue_nats::NatsBus;
use tokio::sync::watch;

use crate::chat::live::BusLiveSink;
use crate::chat::node::ChatNode;
use crate::chat::push::PushOffline;
use crate::feed::live::BusFeedLive;
use crate::http;
use crate::http::metrics::Metrics;
use crate::notify::alerts::OperatorAlerts;
use crate::notify::directory::StoredProviders;
use crate::notify::providers::provider_builders;
use crate::state::{AppParts, AppState};
use crate::ws::Gateway;
use tidings_feed::cache::{FeedCache, MemoryFeedCache};
use tidings_feed::service::FeedSettings;
use tidings_feed::{Feed, FeedParts};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] tidings_platform::StoreError),
    #[error("{0}")]
    Platform(#[from] tidings_platform::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the delivery pipeline's runtime: {0}")]
    Runtime(std::io::Error),
}

/// The services of one node, without a listener or workers: what the CLI commands
/// and the server share.
pub async fn build_state(config: Config) -> Result<(AppState, String), StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backends = crate::backend::open(&config, clock.clone()).await?;
    let ids = Arc::new(Snowflake::new(config.node_id, clock.clone()));
    let accounts = Arc::new(Accounts::new(
        backends.accounts.clone(),
        ids.clone(),
        clock.clone(),
        config.auth.clone(),
    )?);
    let mut metrics = Metrics::default();
    let notify_metrics = Arc::new(NotifyMetrics::new(metrics.registry_mut()));
    let mut notify_config = config.notify.clone();
    if config.nats_url.is_some() {
        // A shared queue spreads deliveries over every node; a hand-off would keep a
        // fan-out's deliveries on the node that happened to fan it out.
        notify_config.local_handoff = 0;
    }
    if notify_config.callback_base_url.is_none() {
        notify_config.callback_base_url = Some(format!("http://{}", config.listen));
    }
    // Several nodes must share one count per user, so with Redis the limits live there.
    let limiter: Arc<dyn RateLimiter> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisRateLimiter::connect(url, &config.redis_prefix)
                .await
                .map_err(unavailable)?,
        ),
        None => Arc::new(MemoryRateLimiter::default()),
    };
    let (bus, presence, registry) = chat_backends(&config).await?;
    let directory = StoredProviders::new(
        backends.notify.clone(),
        provider_builders(),
        config.providers.clone(),
    );
    let notifier = Arc::new(Notifier::new(NotifierParts {
        store: backends.notify,
        accounts: backends.accounts.clone(),
        queue: backends.queue.clone(),
        providers: Arc::new(directory),
        limiter,
        alerts: Arc::new(OperatorAlerts::new(config.notify.alert_webhook_url.clone())),
        live: Arc::new(BusLiveSink::new(bus.clone())),
        ids: ids.clone(),
        clock: clock.clone(),
        config: notify_config,
        metrics: notify_metrics,
    }));
    let feed_queue = backends.queue.clone();
    // With Redis, every node reads and fans out into the same feed caches.
    let feed_cache: Arc<dyn FeedCache> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisFeedCache::connect(url, &config.redis_prefix)
                .await
                .map_err(unavailable)?,
        ),
        None => Arc::new(MemoryFeedCache::new(config.feed.cache_max_feeds)),
    };
    let feed_objects: Arc<dyn ObjectCache> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisObjectCache::connect(url, &config.redis_prefix)
                .await
                .map_err(unavailable)?,
        ),
        None => Arc::new(MemoryObjectCache::new(config.feed.object_cache_entries)),
    };
    let feed = Arc::new(Feed::new(FeedParts {
        store: backends.feed.clone(),
        cache: feed_cache,
        objects: feed_objects,
        accounts: backends.accounts.clone(),
        queue: feed_queue,
        live: Arc::new(BusFeedLive::new(bus.clone())),
        ids: ids.clone(),
        clock: clock.clone(),
        settings: FeedSettings::from_config(&config),
    }));
    let members = Arc::new(MemberCache::new(
        backends.chat.clone(),
        config.chat.member_cache,
    ));
    let chat = Arc::new(Chat::new(ChatParts {
        store: backends.chat.clone(),
        accounts: backends.accounts,
        bus: bus.clone(),
        presence,
        registry,
        push: Arc::new(PushOffline::new(notifier.clone())),
        members: members.clone(),
        ids,
        clock,
        settings: ChatSettings {
            max_members: config.chat.max_members,
            text_chars: config.limits.text_chars,
            push_offline: config.chat.push_offline,
            sync_page: config.chat.sync_page.max(1),
            page_limits: tidings_platform::page::PageLimits {
                default: config.limits.page_default,
                max: config.limits.page_max,
            },
        },
    }));
    let hub = Arc::new(Hub::new(
        HubConfig {
            node: config.node_id,
            outbound_queue: config.chat.outbound_queue,
            gap_timeout: std::time::Duration::from_millis(config.chat.gap_timeout_ms.max(1)),
            max_watched: config.chat.max_watched,
        },
        backends.chat,
        members,
    ));
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("ws://{}/v1/ws", config.listen));
    let (drain, draining) = watch::channel(false);
    let gateway = Arc::new(Gateway {
        chat: chat.clone(),
        hub: hub.clone(),
        accounts: accounts.clone(),
        config: config.chat.clone(),
        frame_bytes: config.limits.ws_frame_bytes,
        public_url: parking_lot::RwLock::new(public_url.clone()),
        draining,
    });
    let chat_node = Arc::new(ChatNode {
        chat: chat.clone(),
        hub,
        bus,
        public_url,
        presence_ttl: std::time::Duration::from_millis(config.chat.presence_ttl_ms.max(100)),
    });
    let state = AppState::new(AppParts {
        config: Arc::new(config),
        accounts,
        notifier,
        metrics: Arc::new(metrics),
        chat,
        feed,
        gateway,
        chat_node,
        drain: Arc::new(drain),
    });
    Ok((state, backends.description))
}

type ChatBackends = (
    Arc<dyn ChatBus>,
    Arc<dyn PresenceStore>,
    Arc<dyn GatewayRegistry>,
);

/// A backend that cannot be reached at start.
fn unavailable(detail: String) -> StartError {
    StartError::Platform(tidings_platform::Error::Unavailable {
        detail,
        retry_after_secs: 1,
    })
}

/// Live delivery between nodes goes over NATS when it is configured; presence and
/// the gateway registry live in Redis when it is. Alone, a node keeps them in memory.
async fn chat_backends(config: &Config) -> Result<ChatBackends, StartError> {
    let bus: Arc<dyn ChatBus> = match &config.nats_url {
        Some(url) => Arc::new(
            NatsBus::connect(url, &config.nats_stream_prefix)
                .await
                .map_err(|e| unavailable(e.to_string()))?,
        ),
        None => Arc::new(InProcessBus::new(config.chat.bus_capacity)),
    };
    let (presence, registry): (Arc<dyn PresenceStore>, Arc<dyn GatewayRegistry>) =
        match &config.redis_url {
            Some(url) => (
                Arc::new(
                    RedisPresence::connect(url, &config.redis_prefix)
                        .await
                        .map_err(unavailable)?,
                ),
                Arc::new(
                    RedisRegistry::connect(url, &config.redis_prefix)
                        .await
                        .map_err(unavailable)?,
                ),
            ),
            None => (
                Arc::new(MemoryPresence::default()),
                Arc::new(MemoryRegistry::default()),
            ),
        };
    Ok((bus, presence, registry))
}

/// How long sockets get to finish in-flight sends when the node stops.
const SOCKET_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Server {
    listener: TcpListener,
    state: AppState,
    first_app: Option<AppCredentials>,
    backend: String,
    pipeline: Option<PipelineRuntime>,
}

/// The delivery pipeline's own runtime (`notify.pipeline_threads`). Its tasks are
/// stopped through the workers' shutdown signal first; what is left at the drop (idle
/// provider connections) is dropped without waiting, which a runtime may do from
/// inside another one, where a plain drop would panic.
struct PipelineRuntime(Option<tokio::runtime::Runtime>);

impl PipelineRuntime {
    fn start(threads: usize) -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tidings-pipeline")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime lives until the drop")
            .handle()
            .clone()
    }
}

impl Drop for PipelineRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Server {
    /// Opens the store, creates the first app of a new installation and binds the
    /// listener; serving starts with [`Server::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listen = config.listen.clone();
        let pipeline = match config.notify.pipeline_threads {
            0 => None,
            n => Some(PipelineRuntime::start(n).map_err(StartError::Runtime)?),
        };
        let (state, backend) = build_state(config).await?;
        let first_app = state.accounts.ensure_first_app().await?;
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        if state.config.public_url.is_none() {
            // Listening on port 0 picks the port only now.
            if let Ok(addr) = listener.local_addr() {
                *state.gateway.public_url.write() = format!("ws://{addr}/v1/ws");
            }
        }
        Ok(Self {
            listener,
            state,
            first_app,
            backend,
            pipeline,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Credentials of the app created at this start, if this start created one.
    pub fn first_app(&self) -> Option<&AppCredentials> {
        self.first_app.as_ref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Which storage this node runs on, for the start-up log line.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish and closes the store (the last commit reaches the disk).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_workers, workers_stopping) = watch::channel(false);
        let pipeline = self
            .pipeline
            .as_ref()
            .map_or_else(tokio::runtime::Handle::current, PipelineRuntime::handle);
        let mut workers = self
            .state
            .notifier
            .start(workers_stopping.clone(), &pipeline);
        workers.extend(self.state.feed.start(workers_stopping.clone()));
        // The announced URL is the bound one, known only now.
        let node = ChatNode {
            chat: self.state.chat_node.chat.clone(),
            hub: self.state.chat_node.hub.clone(),
            bus: self.state.chat_node.bus.clone(),
            public_url: self.state.gateway.public_url(),
            presence_ttl: self.state.chat_node.presence_ttl,
        };
        workers.extend(node.start(workers_stopping).await);
        node.hub.ready().await;
        let app = http::router(self.state.clone());
        let drain = self.state.drain.clone();
        // Without TCP_NODELAY a small frame written after another waits for the
        // peer's delayed ACK (up to ~40 ms): fatal to chat latency.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Sockets are not HTTP requests: axum does not wait for them, so they are
            // told to go elsewhere and given a moment to finish what they hold.
            drain.send_replace(true);
        })
        .await
        .map_err(StartError::Serve);
        let _ = tokio::time::timeout(SOCKET_DRAIN, node.hub.drained()).await;
        // Workers finish the batch in hand; anything claimed but unfinished is
        // picked up again after its lease by whichever node runs next.
        let _ = stop_workers.send(true);
        for w in workers {
            let _ = w.await;
        }
        // Whatever the pipeline still holds (provider connections) goes before the
        // state, so the store's last reference, and its final commit, is the state's.
        drop(self.pipeline);
        drop(self.state);
        served
    }
}
