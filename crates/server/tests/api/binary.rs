//! The `tidings` binary as an operator runs it.

use std::process::Command;

use serde_json::Value;
use tidings_client::AppCredentials;

use crate::helpers::BinaryNode;

fn tidings() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    // The test environment's own settings must not leak into the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[test]
fn app_create_prints_credentials_and_app_list_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = tidings()
        .args(["app", "create", "--name", "shop", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creds: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["app_id", "app_key", "app_secret"] {
        assert!(creds[key].is_string(), "{key} in {creds}");
    }
    let out = tidings()
        .args(["app", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["app_key"], creds["app_key"]);
    assert_eq!(listed[0]["name"], "shop");
    assert!(
        listed[0].get("app_secret").is_none(),
        "secrets are never listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_first_app_once_accepts_new_apps_live_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let node = BinaryNode::start(dir.path(), &[]);
    let first = node.first_app();
    let client = node.client();
    client
        .as_app(&first.app_key, &first.app_secret)
        .search_users("", None, None)
        .await
        .unwrap();

    // An app made by the CLI while the server runs works at once.
    let out = tidings()
        .args(["app", "create", "--name", "live", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: AppCredentials = serde_json::from_slice(&out.stdout).unwrap();
    let live_client = client.as_app(&live.app_key, &live.app_secret);
    let user = live_client
        .create_user(&tidings_client::CreateUser {
            username: Some("zoe".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    let (status, printed) = node.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    assert!(
        printed.is_empty(),
        "the secret is printed once: {printed:?}"
    );

    // A second start prints nothing and keeps the data.
    let node = BinaryNode::start(dir.path(), &[]);
    let client = node.client();
    let again = client
        .as_app(&live.app_key, &live.app_secret)
        .user(&user.id)
        .await
        .unwrap();
    assert_eq!(again.username, "zoe");
    client
        .as_app(&first.app_key, &first.app_secret)
        .user(&user.id)
        .await
        .unwrap_err();
    let (status, printed) = node.terminate();
    assert!(status.success());
    assert!(printed.is_empty(), "a restart creates no app: {printed:?}");
}
