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

use tidings_cache_redis::RedisRateLimiter;
use tidings_notify::directory::NoLiveSockets;
use tidings_notify::metrics::NotifyMetrics;
use tidings_notify::ratelimit::{MemoryRateLimiter, RateLimiter};
use tidings_notify::{Notifier, NotifierParts};
use tokio::sync::watch;

use crate::http;
use crate::http::metrics::Metrics;
use crate::notify::alerts::OperatorAlerts;
use crate::notify::directory::StoredProviders;
use crate::notify::providers::provider_builders;
use crate::state::AppState;

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
    if notify_config.callback_base_url.is_none() {
        notify_config.callback_base_url = Some(format!("http://{}", config.listen));
    }
    // Several nodes must share one count per user, so with Redis the limits live there.
    let limiter: Arc<dyn RateLimiter> =
        match &config.redis_url {
            Some(url) => Arc::new(RedisRateLimiter::connect(url, "tidings:").await.map_err(
                |e| {
                    StartError::Platform(tidings_platform::Error::Unavailable {
                        detail: e,
                        retry_after_secs: 1,
                    })
                },
            )?),
            None => Arc::new(MemoryRateLimiter::default()),
        };
    let directory = StoredProviders::new(
        backends.notify.clone(),
        provider_builders(),
        config.providers.clone(),
    );
    let notifier = Arc::new(Notifier::new(NotifierParts {
        store: backends.notify,
        accounts: backends.accounts,
        queue: backends.queue,
        providers: Arc::new(directory),
        limiter,
        alerts: Arc::new(OperatorAlerts::new(config.notify.alert_webhook_url.clone())),
        live: Arc::new(NoLiveSockets),
        ids,
        clock,
        config: notify_config,
        metrics: notify_metrics,
    }));
    let state = AppState {
        config: Arc::new(config),
        accounts,
        notifier,
        metrics: Arc::new(metrics),
    };
    Ok((state, backends.description))
}

pub struct Server {
    listener: TcpListener,
    state: AppState,
    first_app: Option<AppCredentials>,
    backend: String,
}

impl Server {
    /// Opens the store, creates the first app of a new installation and binds the
    /// listener; serving starts with [`Server::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listen = config.listen.clone();
        let (state, backend) = build_state(config).await?;
        let first_app = state.accounts.ensure_first_app().await?;
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen,
                source,
            })?;
        Ok(Self {
            listener,
            state,
            first_app,
            backend,
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
        let workers = self.state.notifier.start(workers_stopping);
        let app = http::router(self.state.clone());
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve);
        // Workers finish the batch in hand; anything claimed but unfinished is
        // picked up again after its lease by whichever node runs next.
        let _ = stop_workers.send(true);
        for w in workers {
            let _ = w.await;
        }
        drop(self.state);
        served
    }
}
