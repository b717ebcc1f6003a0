//! End-to-end push throughput: notifications accepted over the API, stored durably,
//! fanned out, delivered by the workers to a fake APNs in another process over
//! HTTP/2, and their outcome recorded. Beside it, in the same run, the raw rate of the
//! same fake driven by bare HTTP/2 clients (hyper's, and the `h2`-based pool the
//! server uses; the faster counts): the ceiling no server could beat on this machine.
//! Then the accept latency at a fixed offered rate of half the peak.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tidings_client::{Client, CreateUser};
use tidings_notify::providers::http2::Http2Pool;

use crate::measure::open_loop;
use crate::server::{sibling_binary, ChildProcess, ServerProcess};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds of offered load per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Recipients (each with one APNs device).
    #[arg(long, default_value_t = 2000)]
    users: usize,
    /// Recipients per notification.
    #[arg(long, default_value_t = 100)]
    per_notification: usize,
    /// Concurrent requests of the bare HTTP/2 client.
    #[arg(long, default_value_t = 256)]
    raw_concurrency: usize,
    /// Extra server environment, as NAME=VALUE (repeatable), e.g. a PostgreSQL URL.
    #[arg(long = "server-env")]
    server_env: Vec<String>,
}

struct Fake {
    _process: ChildProcess,
    info: Value,
}

fn start_fake() -> anyhow::Result<Fake> {
    let (process, line) =
        ChildProcess::start_reading_line(sibling_binary("tidings-fake-apns")?, &[])?;
    Ok(Fake {
        _process: process,
        info: serde_json::from_str(&line).context("fake apns info")?,
    })
}

/// What a bare client needs to push to the fake: where it is, how to trust it, and a
/// signed provider token.
struct Target {
    tls: Arc<rustls::ClientConfig>,
    authority: String,
    jwt: String,
    topic: String,
    body: Bytes,
}

impl Target {
    fn new(fake: &Value) -> anyhow::Result<Self> {
        let ca = fake["ca_pem"].as_str().context("ca")?;
        let tls = tidings_notify::providers::tls::client_config(Some(ca), &[b"h2"])?;
        let base = fake["base_url"].as_str().context("base")?.to_owned();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(
            fake["key_pem"].as_str().context("key")?.as_bytes(),
        )?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = fake["key_id"].as_str().map(str::to_owned);
        let iat = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let jwt =
            jsonwebtoken::encode(&header, &json!({"iss": fake["team_id"], "iat": iat}), &key)?;
        Ok(Self {
            tls,
            authority: base.trim_start_matches("https://").to_owned(),
            jwt,
            topic: fake["topic"].as_str().context("topic")?.to_owned(),
            body: Bytes::from(
                json!({"aps": {"alert": {"title": "Shipped", "body": "Order 8812"}, "sound": "default"}})
                    .to_string(),
            ),
        })
    }

    fn request<B>(&self, i: usize, body: B) -> hyper::Request<B> {
        hyper::Request::post(format!("https://{}/3/device/abcdef{i:06x}", self.authority))
            .header("authorization", format!("bearer {}", self.jwt))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .body(body)
            .expect("request")
    }
}

/// `concurrency` tasks each sending one request after another until the deadline;
/// `send` is one request's round trip and says whether it succeeded.
async fn drive<F, Fut>(concurrency: usize, seconds: u64, send: F) -> Value
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (done, errors, send) = (done.clone(), errors.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if send(i).await {
                    done.fetch_add(1, Ordering::Relaxed)
                } else {
                    errors.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    json!({"requests": n, "errors": errors.load(Ordering::Relaxed), "seconds": secs, "per_second": n as f64 / secs})
}

/// The fake driven by hyper's HTTP/2 client over two connections.
async fn ceiling_hyper(
    target: Arc<Target>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Value> {
    let mut senders = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(&target.authority).await?;
        tcp.set_nodelay(true)?;
        let tls = tokio_rustls::TlsConnector::from(target.tls.clone())
            .connect(rustls::pki_types::ServerName::try_from("127.0.0.1")?, tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    let senders = Arc::new(senders);
    Ok(drive(concurrency, seconds, move |i| {
        let (senders, target) = (senders.clone(), target.clone());
        async move {
            let mut sender = senders[i % senders.len()].clone();
            let req = target.request(i, Full::new(target.body.clone()));
            match sender.ready().await {
                Ok(()) => match sender.send_request(req).await {
                    Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
                    Err(_) => false,
                },
                Err(_) => false,
            }
        }
    })
    .await)
}

/// The fake driven over two connections by the `h2`-based pool the server's APNs
/// client uses, so the ceiling is never measured with a heavier client than the
/// server's own.
async fn ceiling_h2(
    target: Arc<Target>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Value> {
    let (host, port) = target
        .authority
        .rsplit_once(':')
        .context("authority without a port")?;
    let pool = Arc::new(Http2Pool::new(host, port.parse()?, target.tls.clone(), 2));
    Ok(drive(concurrency, seconds, move |i| {
        let (pool, target) = (pool.clone(), target.clone());
        async move {
            match pool.send(target.request(i, ()), target.body.clone()).await {
                Ok(r) => r.status.is_success(),
                Err(_) => false,
            }
        }
    })
    .await)
}

/// The ceiling: the higher of the two bare clients' rates against the fake.
async fn raw_ceiling(fake: &Value, concurrency: usize, seconds: u64) -> anyhow::Result<Value> {
    let target = Arc::new(Target::new(fake)?);
    let hyper = ceiling_hyper(target.clone(), concurrency, seconds).await?;
    let h2 = ceiling_h2(target, concurrency, seconds).await?;
    let rate = |v: &Value| v["per_second"].as_f64().unwrap_or(0.0);
    let (mut ceiling, client) = if rate(&h2) >= rate(&hyper) {
        (h2.clone(), "h2")
    } else {
        (hyper.clone(), "hyper")
    };
    ceiling["client"] = json!(client);
    ceiling["hyper"] = hyper;
    ceiling["h2"] = h2;
    Ok(ceiling)
}

/// Push deliveries finished so far, by outcome, from the server's own counters.
async fn finished(client: &Client) -> anyhow::Result<(u64, u64)> {
    let text = client.metrics_text().await?;
    let value = |outcome: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("tidings_notification_deliveries_total{")
                    && l.contains("channel=\"push\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    Ok((
        value("sent"),
        value("failed") + value("dead") + value("target_gone") + value("suppressed"),
    ))
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let fake = start_fake()?;
    let raw = raw_ceiling(&fake.info, args.raw_concurrency, args.seconds).await?;
    eprintln!("raw ceiling: {raw}");

    let env: Vec<(String, String)> = args
        .server_env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut env_refs = env_refs;
    // Every recipient gets hundreds of pushes in a run; the per-user limit would
    // suppress most of them, which is not what this measures.
    env_refs.push(("TIDINGS_NOTIFY__RATE_LIMIT_MAX", "0"));
    let server = ServerProcess::start(&env_refs)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let client = Client::with_http(http, &server.base_url);
    let app = client.as_app(&server.creds.app_key, &server.creds.app_secret);
    let info = &fake.info;
    app.put_provider(
        "apns",
        &json!({"key_pem": info["key_pem"], "key_id": info["key_id"], "team_id": info["team_id"], "topic": info["topic"],
                "endpoint": info["base_url"], "ca_pem": info["ca_pem"]}),
    )
    .await?;
    let mut users = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let user = app
            .create_user(&CreateUser {
                username: Some(format!("push{i}")),
                ..Default::default()
            })
            .await?;
        let token = app.mint_token(&user.id, None).await?.token;
        client
            .as_user(&token)
            .register_device("apns", &format!("{:064x}", i + 1), None)
            .await?;
        users.push(user.id);
    }
    let groups: Arc<Vec<Vec<String>>> = Arc::new(
        users
            .chunks(args.per_notification)
            .map(|c| c.to_vec())
            .collect(),
    );
    let body = move |n: usize| {
        json!({"event_id": format!("bench-{n}"), "to": {"user_ids": groups[n % groups.len()]},
               "content": {"push": {"title": "Shipped", "body": "Order 8812"}}})
    };

    // Throughput: offer notifications as fast as they are accepted for `seconds`, then
    // wait for every delivery to be sent.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, counter) = (app.clone(), counter.clone());
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                if let Ok(a) = app.send_notification(&body(n)).await {
                    ids.push(a.id);
                }
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await?);
    }
    let accept_secs = started.elapsed().as_secs_f64();
    let expected = ids.len() as u64 * args.per_notification as u64;
    let mut last_log = Instant::now();
    let (sent, other) = loop {
        let (sent, other) = finished(&client).await?;
        if sent + other >= expected {
            break (sent, other);
        }
        if last_log.elapsed() > Duration::from_secs(5) {
            eprintln!("{sent}/{expected} sent");
            last_log = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let total_secs = started.elapsed().as_secs_f64();
    let deliveries_per_second = sent as f64 / total_secs;
    let accepted_per_second = ids.len() as f64 / accept_secs;

    // Accept latency while the pipeline runs at half its peak: notifications offered
    // at the rate that makes half the peak delivery rate.
    let half = ((deliveries_per_second / 2.0 / args.per_notification as f64).max(1.0)) as u64;
    let offset = ids.len() + 1_000_000;
    let latency = open_loop(half, Duration::from_secs(args.seconds), 4096, {
        let app = app.clone();
        move |i| {
            let (app, b) = (app.clone(), body(offset + i));
            async move { app.send_notification(&b).await.is_ok() }
        }
    })
    .await;
    let raw_rate = raw["per_second"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "scenario": "push end to end: API → durable → fan-out → workers → fake APNs (HTTP/2, other process) → status",
        "machine": super::machine(),
        "server_env": args.server_env,
        "users": args.users,
        "recipients_per_notification": args.per_notification,
        "raw_ceiling": raw,
        "end_to_end": {
            "notifications_accepted": ids.len(),
            "accepted_per_second": accepted_per_second,
            "deliveries": expected,
            "sent": sent,
            "not_sent": other,
            "seconds_until_all_sent": total_secs,
            "deliveries_per_second": deliveries_per_second,
            "fraction_of_ceiling": deliveries_per_second / raw_rate.max(f64::MIN_POSITIVE),
        },
        "accept_latency_at_half_peak": { "offered_per_second": half, "result": latency },
    }))
}
