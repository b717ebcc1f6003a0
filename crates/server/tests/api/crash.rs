//! Durability of accepted work across a crash: `kill -9` the real binary while the
//! pipeline is busy, start it again on the same data dir, and everything accepted
//! before the kill arrives, once.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tidings_client::{AppCredentials, Client, CreateUser};

use crate::helpers::eventually;

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> (Node, Option<AppCredentials>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("TIDINGS_AUTH__ARGON2_MEMORY_KIB", "1024")
        // Re-dispatch quickly after the restart rather than waiting out a long lease.
        .env("TIDINGS_NOTIFY__LEASE_MS", "1000")
        .env("TIDINGS_NOTIFY__DISPATCH_INTERVAL_MS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server starts");
        if let Some(pos) = line.find("addr=") {
            if line.contains("tidings listening") {
                break line[pos + 5..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
            }
        }
    };
    // Printed before the listening line when this start created the first app.
    let creds = out_rx
        .try_recv()
        .ok()
        .map(|l| serde_json::from_str(&l).unwrap());
    (Node { child, addr }, creds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_notifications_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (node, creds) = start(dir.path());
    let creds = creds.expect("first start prints the app");
    let client = Client::new(&format!("http://{}", node.addr)).unwrap();
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
    let mut node = node;
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    drop(node);
    let accepted: Vec<String> = sends
        .into_iter()
        .map(|r| r.expect("accepted before the kill").id)
        .collect();
    assert_eq!(accepted.len(), SENDS);

    let (node, again) = start(dir.path());
    assert!(again.is_none());
    let client = Client::new(&format!("http://{}", node.addr)).unwrap();
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
