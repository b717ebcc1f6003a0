//! The node's switchboard: which sockets are here, and what each must receive.
//!
//! The hub reads every event from the bus and offers frames to the sockets of the
//! users they concern. Message events are released in log order: one that arrives
//! ahead of a lower `pos` waits until the gap fills, and a gap that does not fill
//! within `gap_timeout` (a lost publish, a node that died between commit and
//! publish) is read from the store, which holds every committed message. Sockets
//! therefore see messages in `pos` order, which is what lets a single number be a
//! sync cursor.
//!
//! Offering never waits: each socket has a bounded queue, and a socket whose queue is
//! full is cut (close 4008) instead of slowing the hub or growing memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use tidings_platform::Id;
use tokio::sync::{mpsc, watch, Notify};

use crate::bus::{BusEvent, BusItem, ConnId};
use crate::frames;
use crate::members::MemberCache;
use crate::model::MessageRecord;
use crate::store::ChatStore;
use crate::views::MessageView;

/// A frame on its way to one socket. `pos` is the message's log position for
/// message frames and 0 for every other frame.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub pos: i64,
    pub frame: Arc<str>,
}

/// One socket as the hub sees it. The socket's task owns the receiving end.
pub struct Connection {
    pub id: ConnId,
    pub app: Id,
    pub user: Id,
    tx: mpsc::Sender<Outbound>,
    cuts: Arc<AtomicU64>,
    cut: Notify,
    too_slow: AtomicBool,
    /// While the socket replays a sync from the store, live messages are left to
    /// the replay (it reads past them) instead of queueing up behind it.
    syncing: AtomicBool,
    watching: Mutex<Vec<Id>>,
}

impl Connection {
    /// Queues a frame without waiting; a full queue marks the socket too slow.
    pub fn offer(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.too_slow.swap(true, Ordering::AcqRel) {
                    self.cuts.fetch_add(1, Ordering::Relaxed);
                    self.cut.notify_one();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Resolves when the socket fell too far behind and must close.
    pub async fn cut(&self) {
        if self.too_slow.load(Ordering::Acquire) {
            return;
        }
        self.cut.notified().await
    }

    pub fn is_too_slow(&self) -> bool {
        self.too_slow.load(Ordering::Acquire)
    }

    pub fn set_syncing(&self, on: bool) {
        self.syncing.store(on, Ordering::Release);
    }
}

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub node: u16,
    /// Frames a socket may have queued before it counts as too slow.
    pub outbound_queue: usize,
    /// How long a gap in the log may stay open before it is read from the store.
    pub gap_timeout: Duration,
    /// Users one socket may watch the presence of.
    pub max_watched: usize,
}

pub struct Hub {
    config: HubConfig,
    store: Arc<dyn ChatStore>,
    members: Arc<MemberCache>,
    next_local: AtomicU64,
    by_user: RwLock<HashMap<Id, Vec<Arc<Connection>>>>,
    watchers: RwLock<HashMap<Id, Vec<Weak<Connection>>>>,
    sockets: AtomicU64,
    socket_count: watch::Sender<u64>,
    /// Every message up to this pos has been routed.
    released: AtomicI64,
    started: watch::Sender<bool>,
    routed: AtomicU64,
    cut: Arc<AtomicU64>,
    filled: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("a socket may watch at most {0} users")]
    TooMany(usize),
}

impl Hub {
    pub fn new(config: HubConfig, store: Arc<dyn ChatStore>, members: Arc<MemberCache>) -> Self {
        Self {
            config,
            store,
            members,
            next_local: AtomicU64::new(1),
            by_user: RwLock::new(HashMap::new()),
            watchers: RwLock::new(HashMap::new()),
            sockets: AtomicU64::new(0),
            socket_count: watch::channel(0).0,
            released: AtomicI64::new(0),
            started: watch::channel(false).0,
            routed: AtomicU64::new(0),
            cut: Arc::new(AtomicU64::new(0)),
            filled: AtomicU64::new(0),
        }
    }

    pub fn node(&self) -> u16 {
        self.config.node
    }

    /// Sockets connected to this node.
    pub fn sockets(&self) -> u64 {
        self.sockets.load(Ordering::Relaxed)
    }

    /// Sockets cut for being too slow since start.
    pub fn sockets_cut(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }

    /// Messages routed from the store because their live event was lost.
    pub fn messages_filled(&self) -> u64 {
        self.filled.load(Ordering::Relaxed)
    }

    /// Resolves once no socket is left on this node.
    pub async fn drained(&self) {
        let mut rx = self.socket_count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Frames offered to sockets since start.
    pub fn frames_routed(&self) -> u64 {
        self.routed.load(Ordering::Relaxed)
    }

    /// Every message at or below this position has been offered to its sockets.
    pub fn released(&self) -> i64 {
        self.released.load(Ordering::Acquire)
    }

    /// Resolves once the hub knows where the log stands.
    pub async fn ready(&self) {
        let mut rx = self.started.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn register(&self, app: Id, user: Id) -> (Arc<Connection>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(self.config.outbound_queue.max(1));
        let conn = Arc::new(Connection {
            id: ConnId {
                node: self.config.node,
                local: self.next_local.fetch_add(1, Ordering::Relaxed),
            },
            app,
            user,
            tx,
            cuts: self.cut.clone(),
            cut: Notify::new(),
            too_slow: AtomicBool::new(false),
            syncing: AtomicBool::new(false),
            watching: Mutex::new(Vec::new()),
        });
        self.by_user
            .write()
            .entry(user)
            .or_default()
            .push(conn.clone());
        let now = self.sockets.fetch_add(1, Ordering::Relaxed) + 1;
        self.socket_count.send_replace(now);
        (conn, rx)
    }

    pub fn unregister(&self, conn: &Arc<Connection>) {
        {
            let mut by_user = self.by_user.write();
            if let Some(list) = by_user.get_mut(&conn.user) {
                let before = list.len();
                list.retain(|c| !Arc::ptr_eq(c, conn));
                if list.len() < before {
                    let now = self.sockets.fetch_sub(1, Ordering::Relaxed) - 1;
                    self.socket_count.send_replace(now);
                }
                if list.is_empty() {
                    by_user.remove(&conn.user);
                }
            }
        }
        let watched = std::mem::take(&mut *conn.watching.lock());
        if !watched.is_empty() {
            let mut watchers = self.watchers.write();
            for user in watched {
                if let Some(list) = watchers.get_mut(&user) {
                    list.retain(|w| {
                        w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(conn))
                    });
                    if list.is_empty() {
                        watchers.remove(&user);
                    }
                }
            }
        }
    }

    /// Every socket on this node, as (user, socket).
    pub fn socket_list(&self) -> Vec<(Id, ConnId)> {
        self.by_user
            .read()
            .iter()
            .flat_map(|(user, conns)| conns.iter().map(move |c| (*user, c.id)))
            .collect()
    }

    /// The socket will get `presence` frames for these users.
    pub fn watch(&self, conn: &Arc<Connection>, users: &[Id]) -> Result<(), WatchError> {
        let mut watching = conn.watching.lock();
        let new: Vec<Id> = users
            .iter()
            .copied()
            .filter(|u| !watching.contains(u))
            .collect();
        if watching.len() + new.len() > self.config.max_watched {
            return Err(WatchError::TooMany(self.config.max_watched));
        }
        let mut watchers = self.watchers.write();
        for user in new {
            watching.push(user);
            watchers.entry(user).or_default().push(Arc::downgrade(conn));
        }
        Ok(())
    }

    /// Reads the bus until `stop` turns true.
    pub async fn run(
        self: Arc<Self>,
        mut events: BoxStream<'static, BusItem>,
        mut stop: watch::Receiver<bool>,
    ) {
        let head = loop {
            match self.store.log_head().await {
                Ok(head) => break head,
                Err(e) => {
                    tracing::warn!(error = %e, "chat hub cannot read the log head; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        };
        self.released.store(head, Ordering::Release);
        self.started.send_replace(true);
        let mut order = Order {
            next: head + 1,
            pending: BTreeMap::new(),
            gap_since: None,
            suspect_head: None,
        };
        let mut tick =
            tokio::time::interval(self.config.gap_timeout.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                item = events.next() => match item {
                    Some(BusItem::Event(event)) => self.handle(&mut order, event).await,
                    Some(BusItem::Lagged) => {
                        tracing::warn!("chat hub fell behind the bus; missed messages come from the store");
                    }
                    None => break,
                },
                _ = tick.tick() => self.check_gaps(&mut order).await,
                _ = stop.changed() => break,
            }
        }
    }

    async fn handle(&self, order: &mut Order, event: Arc<BusEvent>) {
        match &*event {
            BusEvent::Message { message, .. } => {
                let pos = message.pos;
                if pos < order.next {
                    return;
                }
                if pos == order.next {
                    self.route(&event);
                    order.advance(pos);
                    self.release_ready(order);
                } else {
                    order.pending.entry(pos).or_insert(event);
                    order.gap_since.get_or_insert_with(Instant::now);
                }
                self.released.store(order.next - 1, Ordering::Release);
            }
            BusEvent::Users { users, skip, frame } => {
                let frame: Arc<str> = frame.as_str().into();
                let by_user = self.by_user.read();
                for user in users {
                    for conn in by_user.get(user).into_iter().flatten() {
                        if Some(conn.id) != *skip {
                            conn.offer(Outbound {
                                pos: 0,
                                frame: frame.clone(),
                            });
                            self.routed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            BusEvent::Presence { user, frame } => {
                let frame: Arc<str> = frame.as_str().into();
                let watchers = self.watchers.read();
                for conn in watchers
                    .get(user)
                    .into_iter()
                    .flatten()
                    .filter_map(Weak::upgrade)
                {
                    conn.offer(Outbound {
                        pos: 0,
                        frame: frame.clone(),
                    });
                }
            }
            BusEvent::Members { channel } => self.members.invalidate(*channel),
        }
    }

    fn release_ready(&self, order: &mut Order) {
        while let Some(event) = order.pending.remove(&order.next) {
            self.route(&event);
            let pos = order.next;
            order.advance(pos);
        }
        if order.pending.is_empty() {
            order.gap_since = None;
        } else {
            order.gap_since = Some(Instant::now());
        }
    }

    fn route(&self, event: &BusEvent) {
        let BusEvent::Message {
            members,
            origin,
            message,
        } = event
        else {
            return;
        };
        self.route_message(members, *origin, message);
    }

    fn route_message(&self, members: &[Id], origin: Option<ConnId>, message: &MessageRecord) {
        let by_user = self.by_user.read();
        let mut frame: Option<Arc<str>> = None;
        for user in members {
            for conn in by_user.get(user).into_iter().flatten() {
                if Some(conn.id) == origin || conn.syncing.load(Ordering::Acquire) {
                    continue;
                }
                let frame = frame
                    .get_or_insert_with(|| {
                        frames::message(&MessageView::new(message, Vec::new()), message.pos).into()
                    })
                    .clone();
                conn.offer(Outbound {
                    pos: message.pos,
                    frame,
                });
                self.routed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn check_gaps(&self, order: &mut Order) {
        let gap_open = order
            .gap_since
            .is_some_and(|since| since.elapsed() >= self.config.gap_timeout);
        let upto = if gap_open {
            order.pending.keys().next().map(|first| first - 1)
        } else if order.pending.is_empty() {
            // Nothing waiting: a lost publish of the newest messages would go
            // unnoticed until the next message, so compare with the log head. A head
            // ahead of us on two checks in a row is a loss, not a message in flight.
            let head = match self.store.log_head().await {
                Ok(head) => head,
                Err(_) => return,
            };
            match order.suspect_head.replace(head) {
                Some(earlier) if earlier >= order.next => Some(earlier),
                _ => None,
            }
        } else {
            None
        };
        let Some(upto) = upto.filter(|u| *u >= order.next) else {
            return;
        };
        self.fill(order, upto).await;
        self.release_ready(order);
        self.released.store(order.next - 1, Ordering::Release);
    }

    /// Routes `order.next..=upto` from the store.
    async fn fill(&self, order: &mut Order, upto: i64) {
        let messages = match self.store.messages_by_pos(order.next, upto).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "chat hub cannot read missed messages; will retry");
                return;
            }
        };
        tracing::debug!(
            from = order.next,
            upto,
            found = messages.len(),
            "chat hub filled a gap from the store"
        );
        for message in &messages {
            if message.pos < order.next {
                continue;
            }
            let members = match self.members.get(message.channel_id).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "chat hub cannot read members; will retry");
                    return;
                }
            };
            self.route_message(&members, None, message);
            self.filled.fetch_add(1, Ordering::Relaxed);
            order.advance(message.pos);
        }
        // The log has no gaps, so a position the store does not hold was never
        // committed and never will be (a rolled-back write reuses its numbers).
        if order.next <= upto {
            order.next = upto + 1;
        }
        order.pending.retain(|pos, _| *pos >= order.next);
    }
}

struct Order {
    next: i64,
    pending: BTreeMap<i64, Arc<BusEvent>>,
    gap_since: Option<Instant>,
    suspect_head: Option<i64>,
}

impl Order {
    fn advance(&mut self, pos: i64) {
        self.next = self.next.max(pos + 1);
        self.suspect_head = None;
    }
}
