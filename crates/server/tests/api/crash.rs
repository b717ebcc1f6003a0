//! Durability of accepted work across a crash: `kill -9` the real binary while the
//! pipeline is busy, start it again on the same data dir, and everything accepted
//! before the kill arrives, once.

use std::time::Duration;

use serde_json::json;
use tidings_client::{AppCredentials, CreateUser};

use crate::helpers::{eventually, BinaryNode};

/// Re-dispatch quickly after the restart rather than waiting out a long lease.
const FAST_RECOVERY: [(&str, &str); 2] = [
    ("TIDINGS_NOTIFY__LEASE_MS", "1000"),
    ("TIDINGS_NOTIFY__DISPATCH_INTERVAL_MS", "100"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_notifications_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let node = BinaryNode::start(dir.path(), &FAST_RECOVERY);
    let line = node
        .stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("first start prints the app");
    let creds: AppCredentials = serde_json::from_str(&line).unwrap();
    let client = node.client();
    let app = client.as_app(&creds.app_key, &creds.app_secret);
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(
            app.create_user(&CreateUser {
                username: Some(format!("crash{i}")),
                ..Default::default()
            })
            .await
            .unwrap()
            .id,
        );
    }
    const SENDS: usize = 300;
    let sends = futures::future::join_all((0..SENDS).map(|i| {
        let (app, users) = (app.clone(), users.clone());
        async move {
            app.send_notification(&json!({
                "event_id": format!("crash-{i}"),
                "to": {"user_ids": users},
                "content": {"in_app": {"title": format!("n{i}")}}
            }))
            .await
        }
    }))
    .await;
    // Everything above was acknowledged; now the process dies mid-pipeline.
    node.kill_9();
    let accepted: Vec<String> = sends
        .into_iter()
        .map(|r| r.expect("accepted before the kill").id)
        .collect();
    assert_eq!(accepted.len(), SENDS);

    let node = BinaryNode::start(dir.path(), &FAST_RECOVERY);
    let client = node.client();
    let app = client.as_app(&creds.app_key, &creds.app_secret);
    for user in &users {
        let token = app.mint_token(user, None).await.unwrap().token;
        let me = client.as_user(&token);
        let items = eventually("every accepted notification in the inbox", || {
            let me = me.clone();
            async move {
                let mut all = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = me.inbox(Some(100), cursor.as_deref()).await.ok()?;
                    all.extend(page.items);
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                (all.len() >= SENDS).then_some(all)
            }
        })
        .await;
        assert_eq!(items.len(), SENDS, "each notification exactly once");
        let mut ids: Vec<&str> = items.iter().map(|i| i.notification_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SENDS, "no duplicates");
    }
    for id in accepted.iter().take(20) {
        let status = app.notification(id).await.unwrap();
        assert!(status.fanned_out);
        assert!(
            status.deliveries.iter().all(|d| d.status == "delivered"),
            "{status:?}"
        );
    }
}
