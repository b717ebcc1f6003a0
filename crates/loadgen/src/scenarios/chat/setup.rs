//! Users, tokens and sockets for a run. Everything here is set-up, not measured, but
//! thousands of HTTP round trips one after another would take minutes, so they go
//! a few dozen at a time.

use std::time::Instant;

use anyhow::Context;
use futures::stream::{self, StreamExt, TryStreamExt};
use tidings_client::{Client, CreateUser};

use super::wire::{self, Ws};

/// Requests or connects in flight at once during set-up.
pub const SETUP_CONCURRENCY: usize = 32;

pub struct BenchUser {
    pub id: String,
    pub token: String,
}

/// Creates `n` users named `{prefix}{i}` and mints a token for each, in order.
pub async fn create_users(app: &Client, prefix: &str, n: usize) -> anyhow::Result<Vec<BenchUser>> {
    let started = Instant::now();
    let users: Vec<BenchUser> = stream::iter(0..n)
        .map(|i| {
            let app = app.clone();
            let username = format!("{prefix}{i}");
            async move {
                let user = app
                    .create_user(&CreateUser {
                        username: Some(username.clone()),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("creating user {username}"))?;
                let token = app
                    .mint_token(&user.id, None)
                    .await
                    .with_context(|| format!("minting a token for {username}"))?
                    .token;
                Ok::<_, anyhow::Error>(BenchUser { id: user.id, token })
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    eprintln!(
        "created {n} users in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(users)
}

/// The server's WebSocket URL.
pub fn ws_url(base_url: &str) -> String {
    format!("{}/v1/ws", base_url.replacen("http", "ws", 1))
}

/// Read buffer of a busy client socket.
pub const BUSY_READ_BUFFER: usize = 64 * 1024;

/// Opens one socket per token (`None`: no authentication, for the bare server), in
/// order, each ready before it is returned.
pub async fn connect_all(url: &str, tokens: &[Option<&str>]) -> anyhow::Result<Vec<Ws>> {
    stream::iter(tokens.iter().copied())
        .map(|token| async move {
            wire::connect(url, token, BUSY_READ_BUFFER)
                .await
                .map(|(ws, _)| ws)
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}
