//! Email over SMTP against a real SMTP server (Python's aiosmtpd), with STARTTLS and
//! with implicit TLS, and SMTP's reply classes deciding retry or failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_with, Backend};

struct SmtpServer {
    child: Child,
    port: u16,
    messages: Receiver<Value>,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_server(mode: &str) -> SmtpServer {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/smtp_server.py"
        ))
        .args([
            mode,
            cert_path.to_str().unwrap(),
            key_path.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd (pip install aiosmtpd)");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (msg_tx, messages) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("READY ") {
                let _ = port_tx.send(port.trim().parse::<u16>().unwrap());
            } else if let Some(m) = line.strip_prefix("MESSAGE ") {
                let _ = msg_tx.send(serde_json::from_str(m).unwrap());
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the SMTP server starts");
    SmtpServer {
        child,
        port,
        messages,
        ca_pem: cert.cert.pem(),
        _dir: dir,
    }
}

async fn send_and_receive(mode: &str, scheme: &str) {
    let server = smtp_server(mode);
    let app = spawn_with(Backend::Sqlite, |c| {
        c.notify.retry_base_ms = 50;
        c.notify.max_attempts = 2;
        c.notify.dispatch_interval_ms = 50;
    })
    .await
    .unwrap();
    app.app
        .put_provider(
            "email",
            &json!({"provider": "smtp", "url": format!("{scheme}://127.0.0.1:{}", server.port),
                    "from": "Shop <shop@example.com>", "ca_pem": server.ca_pem}),
        )
        .await
        .unwrap();
    let (alice, _) = app.user("alice").await;
    let (rejected, _) = app.user("rejectme").await;
    let (later, _) = app.user("laterplease").await;
    let id = app
        .app
        .send_notification(&json!({"event_id": format!("smtp-{mode}"), "to": {"user_ids": [alice.id, rejected.id, later.id]},
            "content": {"email": {"subject": "Your order", "text": "Shipped.", "html": "<p>Shipped.</p>"}}}))
        .await
        .unwrap()
        .id;
    let message = server
        .messages
        .recv_timeout(Duration::from_secs(20))
        .expect("the message arrives");
    assert_eq!(message["to"], json!(["alice@example.com"]));
    assert_eq!(message["from"], "shop@example.com");
    assert_eq!(message["tls"], true, "{mode} must encrypt");
    let data = message["data"].as_str().unwrap();
    assert!(data.contains("Subject: Your order"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    let deliveries = {
        let (c, id) = (app.app.clone(), id.clone());
        eventually("every email to settle", || {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let s = c.notification(&id).await.ok()?;
                s.deliveries
                    .iter()
                    .all(|d| d.status != "queued" && d.status != "sending")
                    .then_some(s.deliveries)
            }
        })
        .await
    };
    let of = |user: &str| {
        deliveries
            .iter()
            .find(|d| d.user_id == user)
            .unwrap()
            .clone()
    };
    let sent = of(&alice.id);
    assert_eq!(sent.status, "sent");
    let message_id = sent.provider_message_id.unwrap();
    assert!(
        message_id.contains(&sent.id),
        "the Message-ID carries the delivery id: {message_id}"
    );
    assert!(data.contains(&message_id), "{data}");
    let no_such_user = of(&rejected.id);
    assert_eq!(
        (no_such_user.status.as_str(), no_such_user.attempts),
        ("failed", 1),
        "5xx is final"
    );
    let try_later = of(&later.id);
    assert_eq!(
        (
            try_later.status.as_str(),
            try_later.attempts,
            try_later.dead
        ),
        ("failed", 2, true),
        "4xx is retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_with_starttls() {
    send_and_receive("starttls", "smtp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_with_implicit_tls() {
    send_and_receive("implicit", "smtps").await;
}
