//! The `tidings` binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;
use tidings_client::{AppCredentials, Client};

fn tidings() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    // The test environment's own settings must not leak into the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TIDINGS_AUTH__ARGON2_MEMORY_KIB", "1024");
    cmd
}

/// Starts `tidings serve` on a free port; returns the child, its address and its
/// stdout, line by line.
fn serve(data_dir: &std::path::Path) -> (Child, String, Receiver<String>) {
    let mut child = tidings()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings serve");
    let (err_tx, err_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    // Drains stderr for the child's whole life so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
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
        let line = err_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its address");
        if line.contains("tidings listening") {
            let start = line.find("addr=").expect("addr field") + 5;
            break line[start..].split_whitespace().next().unwrap().to_owned();
        }
    };
    (child, addr, out_rx)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait")
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
    let (mut child, addr, stdout) = serve(dir.path());
    // The credentials are printed before the server says it listens.
    let line = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("first start prints the first app");
    let first: AppCredentials = serde_json::from_str(&line).unwrap();
    let client = Client::new(&format!("http://{addr}")).unwrap();
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

    let status = terminate(&mut child);
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    assert_eq!(stdout.iter().count(), 0, "the secret is printed once");

    // A second start prints nothing and keeps the data.
    let (mut child, addr, stdout) = serve(dir.path());
    let client = Client::new(&format!("http://{addr}")).unwrap();
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
    assert!(terminate(&mut child).success());
    assert_eq!(stdout.iter().count(), 0, "a restart creates no app");
}
