//! Conformance tests of [`PresenceStore`] and [`GatewayRegistry`]. Each test uses
//! ids of its own, so suites may share a Redis.

use std::sync::Arc;

use tidings_chat::bus::ConnId;
use tidings_chat::discovery::{least_loaded, GatewayRegistry, NodeInfo};
use tidings_chat::presence::PresenceStore;
use tidings_platform::Id;

type Presence = Arc<dyn PresenceStore>;
type Registry = Arc<dyn GatewayRegistry>;

fn fresh_id() -> Id {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    Id((nanos & 0x0fff_ffff_ffff_ffff) + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

const T0: i64 = 1_800_000_000_000;

fn socket(node: u16, local: u64) -> ConnId {
    ConnId { node, local }
}

pub async fn online_while_any_socket_lives(p: Presence) {
    let (user, other) = (fresh_id(), fresh_id());
    let state = p.states(&[user], T0).await.unwrap();
    assert!(!state[0].online);
    assert_eq!(state[0].last_seen_ms, None, "never seen");
    assert!(
        p.connect(user, socket(1, 1), T0, T0 + 10_000)
            .await
            .unwrap(),
        "came online"
    );
    assert!(
        !p.connect(user, socket(2, 1), T0 + 1, T0 + 10_000)
            .await
            .unwrap(),
        "already online"
    );
    let both = p.states(&[user, other], T0 + 2).await.unwrap();
    assert_eq!((both[0].user_id, both[0].online), (user, true));
    assert_eq!((both[1].user_id, both[1].online), (other, false));
    assert!(
        !p.disconnect(user, socket(1, 1), T0 + 3).await.unwrap(),
        "one socket left"
    );
    assert!(
        p.disconnect(user, socket(2, 1), T0 + 4).await.unwrap(),
        "the last one went"
    );
    let gone = p.states(&[user], T0 + 5).await.unwrap();
    assert!(!gone[0].online);
    assert_eq!(gone[0].last_seen_ms, Some(T0 + 4));
}

pub async fn sockets_expire_unless_refreshed(p: Presence) {
    let (user, kept) = (fresh_id(), fresh_id());
    p.connect(user, socket(1, 7), T0, T0 + 1_000).await.unwrap();
    p.connect(kept, socket(1, 8), T0, T0 + 1_000).await.unwrap();
    p.refresh(&[(kept, socket(1, 8))], T0 + 900, T0 + 2_000)
        .await
        .unwrap();
    let states = p.states(&[user, kept], T0 + 1_500).await.unwrap();
    assert!(
        !states[0].online,
        "a node that stopped refreshing lost its sockets"
    );
    assert!(states[1].online);
    assert_eq!(states[0].last_seen_ms, Some(T0));
    // Coming back after expiring counts as coming online.
    assert!(p
        .connect(user, socket(1, 9), T0 + 1_600, T0 + 3_000)
        .await
        .unwrap());
}

pub async fn the_registry_lists_live_gateways(r: Registry) {
    let base = (fresh_id().0 % 500) as u16;
    let (a, b) = (base, base + 1);
    let info = |node: u16, connections: u64| NodeInfo {
        node,
        url: format!("ws://node{node}/v1/ws"),
        connections,
    };
    r.announce(&info(a, 10), T0 + 1_000).await.unwrap();
    r.announce(&info(b, 3), T0 + 1_000).await.unwrap();
    let mine = |nodes: Vec<NodeInfo>| -> Vec<NodeInfo> {
        nodes
            .into_iter()
            .filter(|n| n.node == a || n.node == b)
            .collect()
    };
    let live = mine(r.live_nodes(T0).await.unwrap());
    assert_eq!(live.len(), 2);
    assert_eq!(least_loaded(&live).unwrap().node, b);
    r.announce(&info(b, 30), T0 + 1_000).await.unwrap();
    assert_eq!(
        least_loaded(&mine(r.live_nodes(T0).await.unwrap()))
            .unwrap()
            .node,
        a
    );
    r.withdraw(a).await.unwrap();
    let live = mine(r.live_nodes(T0).await.unwrap());
    assert_eq!(live.iter().map(|n| n.node).collect::<Vec<_>>(), vec![b]);
    assert!(
        mine(r.live_nodes(T0 + 1_000).await.unwrap()).is_empty(),
        "expired"
    );
}
