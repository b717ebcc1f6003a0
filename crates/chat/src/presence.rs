//! Who is online. A user is online while any of their sockets, on any node, is
//! registered and unexpired; each socket's entry expires unless its node refreshes
//! it, so the sockets of a node that died go offline by themselves.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use tidings_platform::store::StoreResult;
use tidings_platform::Id;

use crate::bus::ConnId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceState {
    pub user_id: Id,
    pub online: bool,
    /// When the user was last seen connected; `None` if never.
    pub last_seen_ms: Option<i64>,
}

#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Registers a socket until `expires_ms`; true when the user was offline before.
    async fn connect(
        &self,
        user: Id,
        conn: ConnId,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<bool>;
    /// Extends the registration of a node's live sockets.
    async fn refresh(
        &self,
        sockets: &[(Id, ConnId)],
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// Removes a socket; true when the user has no live socket left.
    async fn disconnect(&self, user: Id, conn: ConnId, now_ms: i64) -> StoreResult<bool>;
    /// The state of each user, in the order asked.
    async fn states(&self, users: &[Id], now_ms: i64) -> StoreResult<Vec<PresenceState>>;
}

#[derive(Default)]
struct Entry {
    sockets: HashMap<ConnId, i64>,
    last_seen_ms: Option<i64>,
}

/// The embedded default: one process knows every socket.
#[derive(Default)]
pub struct MemoryPresence {
    users: Mutex<HashMap<Id, Entry>>,
}

impl Entry {
    /// Drops expired sockets. Their last refresh already moved `last_seen_ms`.
    fn online(&mut self, now_ms: i64) -> bool {
        self.sockets.retain(|_, expires| *expires > now_ms);
        !self.sockets.is_empty()
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn connect(
        &self,
        user: Id,
        conn: ConnId,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<bool> {
        let mut users = self.users.lock();
        let entry = users.entry(user).or_default();
        let was_online = entry.online(now_ms);
        entry.sockets.insert(conn, expires_ms);
        entry.last_seen_ms = Some(now_ms);
        Ok(!was_online)
    }

    async fn refresh(
        &self,
        sockets: &[(Id, ConnId)],
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()> {
        let mut users = self.users.lock();
        for (user, conn) in sockets {
            let entry = users.entry(*user).or_default();
            entry.sockets.insert(*conn, expires_ms);
            entry.last_seen_ms = Some(now_ms);
        }
        Ok(())
    }

    async fn disconnect(&self, user: Id, conn: ConnId, now_ms: i64) -> StoreResult<bool> {
        let mut users = self.users.lock();
        let Some(entry) = users.get_mut(&user) else {
            return Ok(true);
        };
        entry.sockets.remove(&conn);
        entry.last_seen_ms = Some(now_ms);
        Ok(!entry.online(now_ms))
    }

    async fn states(&self, users: &[Id], now_ms: i64) -> StoreResult<Vec<PresenceState>> {
        let mut map = self.users.lock();
        Ok(users
            .iter()
            .map(|&user_id| match map.get_mut(&user_id) {
                Some(entry) => {
                    let online = entry.online(now_ms);
                    PresenceState {
                        user_id,
                        online,
                        last_seen_ms: if online {
                            Some(now_ms)
                        } else {
                            entry.last_seen_ms
                        },
                    }
                }
                None => PresenceState {
                    user_id,
                    online: false,
                    last_seen_ms: None,
                },
            })
            .collect())
    }
}
