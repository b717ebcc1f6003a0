//! Authenticated `GET /v1/me`: the cost of the request path itself (routing, token
//! verification, one indexed read). First the peak with a closed loop, then latency
//! at fixed offered rates of one half and one quarter of that peak.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tidings_client::{Client, CreateUser};

use crate::measure::{closed_loop, open_loop};
use crate::server::ServerProcess;

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent requests in the closed-loop phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Distinct users whose tokens are used in turn.
    #[arg(long, default_value_t = 200)]
    users: usize,
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let server = ServerProcess::start(&[])?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections * 2)
        .build()?;
    let client = Client::with_http(http.clone(), &server.base_url);
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    let mut tokens = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let user = app
            .create_user(&CreateUser {
                username: Some(format!("bench{i}")),
                ..Default::default()
            })
            .await?;
        tokens.push(app.mint_token(&user.id, None).await?.token);
    }
    let url = Arc::new(format!("{}/v1/me", server.base_url));
    let tokens = Arc::new(tokens);
    let make_op = || {
        let (http, url, tokens) = (http.clone(), url.clone(), tokens.clone());
        move |i: usize| {
            let request = http
                .get(url.as_str())
                .bearer_auth(&tokens[i % tokens.len()]);
            async move {
                match request.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }
    };
    // Warm up connections and caches.
    closed_loop(args.connections, Duration::from_secs(2), make_op()).await;
    let peak = closed_loop(
        args.connections,
        Duration::from_secs(args.seconds),
        make_op(),
    )
    .await;
    let half_rate = (peak.per_second / 2.0).max(1.0) as u64;
    let quarter_rate = (peak.per_second / 4.0).max(1.0) as u64;
    let half = open_loop(
        half_rate,
        Duration::from_secs(args.seconds),
        4096,
        make_op(),
    )
    .await;
    let quarter = open_loop(
        quarter_rate,
        Duration::from_secs(args.seconds),
        4096,
        make_op(),
    )
    .await;
    Ok(json!({
        "scenario": "GET /v1/me (bearer token, embedded SQLite)",
        "machine": super::machine(),
        "server_pid": server.pid(),
        "connections": args.connections,
        "peak": peak,
        "at_half_peak": { "offered_per_second": half_rate, "result": half },
        "at_quarter_peak": { "offered_per_second": quarter_rate, "result": quarter },
    }))
}
