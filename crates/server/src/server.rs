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

use crate::http;
use crate::http::metrics::Metrics;
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

/// The services of one node, without a listener: what the CLI commands and the
/// server share.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let store = crate::backend::open_store(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids = Arc::new(Snowflake::new(config.node_id, clock.clone()));
    let accounts = Arc::new(Accounts::new(store, ids, clock, config.auth.clone())?);
    Ok(AppState {
        config: Arc::new(config),
        accounts,
        metrics: Arc::new(Metrics::default()),
    })
}

pub struct Server {
    listener: TcpListener,
    state: AppState,
    first_app: Option<AppCredentials>,
}

impl Server {
    /// Opens the store, creates the first app of a new installation and binds the
    /// listener; serving starts with [`Server::run_until`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listen = config.listen.clone();
        let state = build_state(config).await?;
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

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish and closes the store (the last commit reaches the disk).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let app = http::router(self.state.clone());
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)?;
        drop(self.state);
        Ok(())
    }
}
