//! A bare WebSocket broadcast server: the ceiling for group fan-out on this machine.
//! Every connection is a member of one group; each text frame a member sends goes,
//! unchanged and unparsed, to every other member. No storage, no JSON, no auth.
//!
//! It does the same transport work Tidings does for a delivery and nothing else:
//! the same socket buffer sizes, one task per connection, a bounded queue per
//! connection that cuts a reader which falls behind (4008) instead of waiting for it,
//! and up to 64 queued frames written before each flush. `TCP_NODELAY` is a flag, so
//! a run can show what Nagle's algorithm costs on the same work. It runs in a process of its
//! own (the load generator re-executed), as the server under test does, so both get
//! a runtime of their own beside the same client.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::wire::{PING, PONG};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Address to listen on; the bound one is printed as `{"addr": ...}`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Frames queued for one connection before it counts as too slow (Tidings: 512).
    #[arg(long, default_value_t = 512)]
    queue: usize,
    /// Read and write buffer of each socket, in bytes (Tidings: 4 KiB each).
    #[arg(long, default_value_t = 4096)]
    buffer: usize,
    /// Set TCP_NODELAY on accepted sockets.
    #[arg(long)]
    nodelay: bool,
}

/// Frames written before a flush when many are queued, as in Tidings.
const WRITE_BATCH: usize = 64;

struct Member {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
}

type Group = Arc<RwLock<Vec<Member>>>;

pub async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    println!(
        "{}",
        serde_json::json!({"addr": listener.local_addr()?.to_string()})
    );
    let group: Group = Arc::default();
    let config = WebSocketConfig::default()
        .read_buffer_size(args.buffer)
        .write_buffer_size(args.buffer)
        .max_write_buffer_size(1024 * 1024);
    let mut next_id = 0;
    loop {
        let (tcp, _) = listener.accept().await?;
        if args.nodelay {
            tcp.set_nodelay(true)?;
        }
        next_id += 1;
        tokio::spawn(member(tcp, next_id, group.clone(), config, args.queue));
    }
}

async fn member(tcp: TcpStream, id: u64, group: Group, config: WebSocketConfig, queue: usize) {
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(queue.max(1));
    write_group(&group).push(Member { id, tx });
    loop {
        tokio::select! {
            out = rx.recv() => {
                // The sender was dropped: this member was too slow and is cut.
                let Some(first) = out else {
                    let _ = ws
                        .send(Message::Close(Some(CloseFrame {
                            code: CloseCode::from(4008),
                            reason: "too slow to keep up".into(),
                        })))
                        .await;
                    break;
                };
                if ws.feed(Message::Text(first)).await.is_err() {
                    break;
                }
                let mut failed = false;
                for _ in 1..WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(next) => {
                            if ws.feed(Message::Text(next)).await.is_err() {
                                failed = true;
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                if failed || ws.flush().await.is_err() {
                    break;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str() == PING {
                        if ws.send(Message::text(PONG)).await.is_err() {
                            break;
                        }
                    } else {
                        broadcast(&group, id, &text);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    write_group(&group).retain(|m| m.id != id);
}

/// Offers the frame to every other member without waiting; members whose queue is
/// full leave the group, which closes their queue and so their socket.
fn broadcast(group: &Group, from: u64, text: &Utf8Bytes) {
    let mut slow = Vec::new();
    {
        let members = group.read().unwrap_or_else(|e| e.into_inner());
        for m in members.iter().filter(|m| m.id != from) {
            if let Err(mpsc::error::TrySendError::Full(_)) = m.tx.try_send(text.clone()) {
                slow.push(m.id);
            }
        }
    }
    if !slow.is_empty() {
        write_group(group).retain(|m| !slow.contains(&m.id));
    }
}

fn write_group(group: &Group) -> std::sync::RwLockWriteGuard<'_, Vec<Member>> {
    group.write().unwrap_or_else(|e| e.into_inner())
}
