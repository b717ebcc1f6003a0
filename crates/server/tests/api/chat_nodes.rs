//! Chat across processes: two `tidings serve` processes sharing PostgreSQL, NATS and
//! Redis deliver between users on different nodes; and `kill -9` of the embedded
//! server under load loses no acked message.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use tidings_client::{AppCredentials, Client, CreateUser, Frame, HistoryQuery, Socket};

use crate::helpers::BinaryNode;

fn cluster_urls() -> Option<(String, String, String)> {
    Some((
        std::env::var("TIDINGS_TEST_DATABASE_URL").ok()?,
        std::env::var("TIDINGS_TEST_NATS_URL").ok()?,
        std::env::var("TIDINGS_TEST_REDIS_URL").ok()?,
    ))
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, val)| (*k, val.as_str())).collect()
}

fn ws_url(node: &BinaryNode) -> String {
    format!("ws://{}/v1/ws", node.addr)
}

async fn user(app: &Client, name: &str) -> (String, String) {
    let u = app
        .create_user(&CreateUser {
            username: Some(name.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = app.mint_token(&u.id, None).await.unwrap().token;
    (u.id, token)
}

fn first_app(node: &BinaryNode) -> AppCredentials {
    let line = node
        .stdout
        .recv_timeout(Duration::from_secs(30))
        .expect("first start prints the app");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_between_users_on_different_nodes() {
    let Some((db, nats, redis)) = cluster_urls() else {
        eprintln!("skipped: PostgreSQL, NATS and Redis test URLs are not all set");
        return;
    };
    let schema = tidings_store_postgres::ScratchSchema::new(&db, "chatnodes");
    let prefix = format!("T{:012x}", rand::random::<u64>() >> 16);
    let redis_prefix = format!("test:{prefix}:");
    let dir = tempfile::tempdir().unwrap();
    let env = |node: &'static str| {
        vec![
            ("TIDINGS_DATABASE_URL", db.clone()),
            ("TIDINGS_DATABASE_SCHEMA", schema.name().to_owned()),
            ("TIDINGS_NATS_URL", nats.clone()),
            ("TIDINGS_NATS_STREAM_PREFIX", prefix.clone()),
            ("TIDINGS_REDIS_URL", redis.clone()),
            ("TIDINGS_REDIS_PREFIX", redis_prefix.clone()),
            ("TIDINGS_NODE_ID", node.to_owned()),
        ]
    };
    let env_a = env("1");
    let env_b = env("2");
    let node_a = BinaryNode::start(dir.path(), &pairs(&env_a));
    let creds = first_app(&node_a);
    let node_b = BinaryNode::start(dir.path(), &pairs(&env_b));
    let app = node_a.client().as_app(&creds.app_key, &creds.app_secret);
    let (alice, alice_token) = user(&app, "alice").await;
    let (bob, bob_token) = user(&app, "bob").await;
    let (carol, carol_token) = user(&app, "carol").await;

    // Alice on node A, Bob and Carol on node B.
    let (mut sa, _) = Socket::connect(&ws_url(&node_a), Some(&alice_token))
        .await
        .unwrap();
    let (mut sb, _) = Socket::connect(&ws_url(&node_b), Some(&bob_token))
        .await
        .unwrap();
    let (mut sc, _) = Socket::connect(&ws_url(&node_b), Some(&carol_token))
        .await
        .unwrap();
    let alice_client = node_a.client().as_user(&alice_token);
    let direct = alice_client
        .create_channel("direct", None, &[&bob])
        .await
        .unwrap();
    let group = alice_client
        .create_channel("group", Some("spread"), &[&bob, &carol])
        .await
        .unwrap();

    for i in 0..10 {
        sa.send(&json!({"type": "send", "ref": i, "channel_id": direct.id, "client_msg_id": format!("d{i}"), "text": format!("to bob {i}")}))
            .await
            .unwrap();
        sa.expect("ack").await.unwrap();
    }
    for i in 0..10 {
        let m = sb.expect("message").await.unwrap();
        assert_eq!(m["message"]["seq"], i + 1, "in order across nodes");
    }
    sb.send(&json!({"type": "send", "ref": "r", "channel_id": direct.id, "client_msg_id": "back", "text": "hi alice"}))
        .await
        .unwrap();
    sb.expect("ack").await.unwrap();
    assert_eq!(
        sa.expect("message").await.unwrap()["message"]["text"],
        "hi alice"
    );

    sa.send(&json!({"type": "send", "ref": "g", "channel_id": group.id, "client_msg_id": "g1", "text": "all"}))
        .await
        .unwrap();
    sa.expect("ack").await.unwrap();
    assert_eq!(
        sb.expect("message").await.unwrap()["message"]["text"],
        "all"
    );
    assert_eq!(
        sc.expect("message").await.unwrap()["message"]["text"],
        "all"
    );
    sc.send(&json!({"type": "typing", "channel_id": group.id}))
        .await
        .unwrap();
    assert_eq!(
        sa.expect("typing").await.unwrap()["user_id"],
        carol.as_str()
    );

    // Presence is one truth for both nodes.
    let p = alice_client.presence(&bob).await.unwrap();
    assert_eq!(p.status, "online", "bob's socket is on the other node");
    sa.send(&json!({"type": "presence_subscribe", "user_ids": [carol]}))
        .await
        .unwrap();
    assert_eq!(sa.expect("presence").await.unwrap()["status"], "online");
    sc.close().await;
    let offline = sa.expect("presence").await.unwrap();
    assert_eq!(
        (offline["user_id"].as_str(), offline["status"].as_str()),
        (Some(carol.as_str()), Some("offline"))
    );

    // Discovery names live nodes; a node that stops leaves at once and tells its
    // sockets to go elsewhere.
    let urls: HashSet<String> = [ws_url(&node_a), ws_url(&node_b)].into();
    let endpoint = alice_client.ws_endpoint().await.unwrap().url;
    assert!(urls.contains(&endpoint), "{endpoint}");
    let url_a = ws_url(&node_a);
    let stopping = tokio::task::spawn_blocking(move || node_b.terminate());
    let mut told = false;
    let close = loop {
        match sb.next().await.unwrap() {
            Frame::Json(v) if v["type"] == "reconnect" => told = true,
            Frame::Json(_) => {}
            Frame::Closed(c) => break c,
        }
    };
    assert!(told, "told to reconnect");
    assert_eq!(close.map(|c| c.0), Some(1012));
    let (status, _) = stopping.await.unwrap();
    assert!(status.success());
    assert_eq!(alice_client.ws_endpoint().await.unwrap().url, url_a);
    drop(node_a);
    crate::cluster::delete_streams(&nats, &prefix).await;
    let _ = alice;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_kill_9_and_sync_to_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let fast = [
        ("TIDINGS_CHAT__FRAMES_PER_SEC", "100000"),
        ("TIDINGS_CHAT__FRAME_BURST", "100000"),
    ];
    let node = BinaryNode::start(dir.path(), &fast);
    let creds = first_app(&node);
    let app = node.client().as_app(&creds.app_key, &creds.app_secret);
    let (_, alice_token) = user(&app, "alice").await;
    let (bob, bob_token) = user(&app, "bob").await;
    let alice = node.client().as_user(&alice_token);
    let channel = alice.create_channel("direct", None, &[&bob]).await.unwrap();
    // Bob's device notes where it stands, then goes offline.
    let (mut sb, _) = Socket::connect(&ws_url(&node), Some(&bob_token))
        .await
        .unwrap();
    sb.send(&json!({"type": "sync"})).await.unwrap();
    let cursor = sb.expect("synced").await.unwrap()["cursor"].clone();
    sb.close().await;

    let (mut sa, _) = Socket::connect(&ws_url(&node), Some(&alice_token))
        .await
        .unwrap();
    let mut acked: Vec<Value> = Vec::new();
    let mut sent = 0;
    let window = 32;
    // Keep a window of sends in flight and pull the plug mid-stream.
    while acked.len() < 300 {
        while sent - acked.len() < window {
            sa.send(&json!({"type": "send", "ref": sent, "channel_id": channel.id, "client_msg_id": format!("k{sent}"), "text": format!("message {sent}")}))
                .await
                .unwrap();
            sent += 1;
        }
        acked.push(sa.expect("ack").await.unwrap()["message"].clone());
    }
    node.kill_9();

    let node = BinaryNode::start(dir.path(), &fast);
    let alice = node.client().as_user(&alice_token);
    let mut history = Vec::new();
    let mut before = None;
    loop {
        let page = alice
            .history(
                &channel.id,
                HistoryQuery {
                    before_seq: before,
                    limit: Some(100),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        history.splice(0..0, page.items);
        match page.next_cursor {
            Some(c) => before = Some(c.parse().unwrap()),
            None => break,
        }
    }
    let stored: HashSet<&str> = history.iter().map(|m| m.id.as_str()).collect();
    for m in &acked {
        assert!(
            stored.contains(m["id"].as_str().unwrap()),
            "acked {m} is in history"
        );
    }
    let seqs: Vec<i64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as i64).collect::<Vec<_>>(),
        "no gaps"
    );

    let (mut sb, _) = Socket::connect(&ws_url(&node), Some(&bob_token))
        .await
        .unwrap();
    sb.send(&json!({"type": "sync", "cursor": cursor}))
        .await
        .unwrap();
    let mut synced = Vec::new();
    loop {
        match sb.next().await.unwrap() {
            Frame::Json(v) if v["type"] == "message" => {
                synced.push(v["message"]["id"].as_str().unwrap().to_owned())
            }
            Frame::Json(v) if v["type"] == "synced" => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let want: Vec<String> = history.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        synced, want,
        "the receiver gets every stored message once, in order"
    );
}
