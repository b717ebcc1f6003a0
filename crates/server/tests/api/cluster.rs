//! The distributed shape: PostgreSQL for storage, NATS JetStream for the queues,
//! Redis for rate limits, and two nodes sharing them. Runs when all three test URLs
//! are set (CI sets them).

use serde_json::json;
use tidings_client::Client;
use tidings_platform::config::Config;
use tidings_server::Server;

use crate::helpers::{eventually, spawn_with, Backend};

fn cluster_urls() -> Option<(String, String)> {
    let nats = std::env::var("TIDINGS_TEST_NATS_URL").ok()?;
    let redis = std::env::var("TIDINGS_TEST_REDIS_URL").ok()?;
    std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?;
    Some((nats, redis))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_cross_nodes_on_postgres_nats_and_redis() {
    let Some((nats, redis)) = cluster_urls() else {
        eprintln!("skipped: PostgreSQL, NATS and Redis test URLs are not all set");
        return;
    };
    let prefix = format!("T{:012x}", rand::random::<u64>() >> 16);
    let (nats_a, redis_a, prefix_a) = (nats.clone(), redis, prefix.clone());
    let node_a = spawn_with(Backend::Postgres, move |c| {
        c.nats_url = Some(nats_a);
        c.redis_url = Some(redis_a);
        c.nats_stream_prefix = prefix_a;
        c.node_id = 1;
    })
    .await
    .expect("postgres");
    // A second node on the same database, queues and limits; it does not serve the
    // API in this test, it only works.
    let mut config: Config = (*node_a.state.config).clone();
    config.node_id = 2;
    config.listen = "127.0.0.1:0".into();
    let node_b = Server::build(config).await.expect("second node");
    assert!(
        node_b.first_app().is_none(),
        "the app lives in the shared database"
    );
    let b_base = format!("http://{}", node_b.local_addr());
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(node_b.run_until(async {
        let _ = stopped_b.await;
    }));

    // A token minted by node A works on node B.
    let (alice, _) = node_a.user("alice").await;
    let token = node_a.app.mint_token(&alice.id, None).await.unwrap().token;
    let alice_on_b = Client::new(&b_base).unwrap().as_user(&token);
    assert_eq!(alice_on_b.me().await.unwrap().id, alice.id);

    let mut ids = Vec::new();
    for i in 0..20 {
        let accepted = node_a
            .app
            .send_notification(
                &json!({"event_id": format!("x-{i}"), "to": {"user_ids": [alice.id]},
                "content": {"in_app": {"title": format!("n{i}")}}}),
            )
            .await
            .unwrap();
        ids.push(accepted.id);
    }
    let items = eventually(
        "every notification in the inbox, read through node B",
        || {
            let c = alice_on_b.clone();
            async move {
                c.inbox(Some(100), None)
                    .await
                    .ok()
                    .filter(|p| p.items.len() >= 20)
            }
        },
    )
    .await;
    assert_eq!(items.items.len(), 20, "each once");
    let _ = stop_b.send(());
    b_task.await.unwrap().unwrap();
    node_a.stop().await;
    delete_streams(&nats, &prefix).await;
}

/// Removes this test's JetStream streams (named `<prefix>_<queue>`).
pub async fn delete_streams(url: &str, prefix: &str) {
    use futures::StreamExt;
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for name in names
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}_")))
    {
        let _ = js.delete_stream(name).await;
    }
}
