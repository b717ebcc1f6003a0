//! The chat service: what the HTTP routes and the WebSocket gateway call.

use std::sync::Arc;

use async_trait::async_trait;
use tidings_platform::accounts::Ids;
use tidings_platform::clock::Clock;
use tidings_platform::page::{Page, PageLimits};
use tidings_platform::store::AccountStore;
use tidings_platform::{Error, Id, Result};

use crate::bus::{BusEvent, ChatBus, ConnId};
use crate::discovery::{least_loaded, GatewayRegistry, NodeInfo};
use crate::frames;
use crate::members::MemberCache;
use crate::model::{
    Appended, ChannelKind, ChannelRecord, MemberRecord, MemberRole, MessageRecord, NewMessage,
};
use crate::presence::{PresenceState, PresenceStore};
use crate::store::{ChannelCursor, ChatStore};
use crate::views::{ChannelView, MemberView, MessageView, PresenceView};

pub const CLIENT_MSG_ID_MAX: usize = 64;
pub const CHANNEL_NAME_MAX: usize = 100;
pub const EMOJI_MAX_BYTES: usize = 64;
/// User ids listed per emoji on a message.
const REACTION_USERS: u32 = 10;

#[derive(Clone, Debug)]
pub struct ChatSettings {
    pub max_members: u32,
    pub text_chars: usize,
    /// Offline members get a push notification for new messages.
    pub push_offline: bool,
    /// Messages a `sync` reads from the store at a time.
    pub sync_page: u32,
    pub page_limits: PageLimits,
}

/// Tells members who have no live socket about a message (the notification
/// pipeline, in the server).
#[async_trait]
pub trait OfflinePush: Send + Sync + 'static {
    async fn push(&self, channel: &ChannelRecord, message: &MessageRecord, users: Vec<Id>);
}

/// Nobody is told: for tests and servers without notifications.
pub struct NoPush;

#[async_trait]
impl OfflinePush for NoPush {
    async fn push(&self, _channel: &ChannelRecord, _message: &MessageRecord, _users: Vec<Id>) {}
}

pub struct ChatParts {
    pub store: Arc<dyn ChatStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub bus: Arc<dyn ChatBus>,
    pub presence: Arc<dyn PresenceStore>,
    pub registry: Arc<dyn GatewayRegistry>,
    pub push: Arc<dyn OfflinePush>,
    pub members: Arc<MemberCache>,
    pub ids: Arc<Ids>,
    pub clock: Arc<dyn Clock>,
    pub settings: ChatSettings,
}

pub struct Chat {
    store: Arc<dyn ChatStore>,
    accounts: Arc<dyn AccountStore>,
    bus: Arc<dyn ChatBus>,
    presence: Arc<dyn PresenceStore>,
    registry: Arc<dyn GatewayRegistry>,
    push: Arc<dyn OfflinePush>,
    members: Arc<MemberCache>,
    ids: Arc<Ids>,
    clock: Arc<dyn Clock>,
    settings: ChatSettings,
}

/// `POST /v1/channels`.
#[derive(Clone, Debug)]
pub struct NewChannel {
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub members: Vec<Id>,
}

/// Who sends: a member over HTTP or WebSocket, or the app on a member's behalf.
#[derive(Clone, Copy, Debug)]
pub struct Sender {
    pub app: Id,
    pub user: Id,
    pub origin: Option<ConnId>,
}

impl Chat {
    pub fn new(p: ChatParts) -> Self {
        Self {
            store: p.store,
            accounts: p.accounts,
            bus: p.bus,
            presence: p.presence,
            registry: p.registry,
            push: p.push,
            members: p.members,
            ids: p.ids,
            clock: p.clock,
            settings: p.settings,
        }
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<dyn ChatStore> {
        &self.store
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn publish(&self, event: BusEvent) {
        if let Err(e) = self.bus.publish(Arc::new(event)).await {
            // Live frames are best effort; messages are recovered from the store.
            tracing::warn!(error = %e, "chat bus publish failed");
        }
    }

    async fn check_users(&self, app: Id, users: &[Id]) -> Result<()> {
        let found = self.accounts.users_by_ids(app, users).await?;
        if let Some(missing) = users.iter().find(|u| !found.iter().any(|f| f.id == **u)) {
            return Err(Error::validation(
                "members",
                format!("user {missing} does not exist"),
            ));
        }
        Ok(())
    }

    pub async fn create_channel(
        &self,
        app: Id,
        creator: Id,
        req: NewChannel,
    ) -> Result<(ChannelView, bool)> {
        let now = self.clock.now_ms();
        let mut others: Vec<Id> = req
            .members
            .iter()
            .copied()
            .filter(|m| *m != creator)
            .collect();
        others.sort();
        others.dedup();
        let (name, direct_key) = match req.kind {
            ChannelKind::Direct => {
                if others.len() != 1 || req.members.len() != 1 {
                    return Err(Error::validation(
                        "members",
                        "a direct channel names exactly one other user",
                    ));
                }
                if req.name.is_some() {
                    return Err(Error::validation("name", "a direct channel has no name"));
                }
                let (a, b) = (creator.min(others[0]), creator.max(others[0]));
                (None, Some(format!("{a}:{b}")))
            }
            ChannelKind::Group => {
                let name = req
                    .name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| Error::validation("name", "a group needs a name"))?;
                if name.chars().count() > CHANNEL_NAME_MAX || name.chars().any(char::is_control) {
                    return Err(Error::validation(
                        "name",
                        format!("name must be 1-{CHANNEL_NAME_MAX} printable characters"),
                    ));
                }
                if others.len() + 1 > self.settings.max_members as usize {
                    return Err(Error::validation(
                        "members",
                        format!(
                            "a channel has at most {} members",
                            self.settings.max_members
                        ),
                    ));
                }
                (Some(name.to_owned()), None)
            }
        };
        self.check_users(app, &others).await?;
        let channel = ChannelRecord {
            id: self.ids.next_id(),
            app_id: app,
            kind: req.kind,
            name,
            created_by: creator,
            direct_key,
            created_at_ms: now,
            last_seq: 0,
            last_message_id: None,
            activity_ms: now,
            member_count: (others.len() + 1) as i64,
        };
        let mut members = vec![MemberRecord {
            channel_id: channel.id,
            user_id: creator,
            role: MemberRole::Admin,
            joined_at_ms: now,
            read_seq: 0,
        }];
        members.extend(others.iter().map(|&user_id| MemberRecord {
            channel_id: channel.id,
            user_id,
            role: match req.kind {
                // Both ends of a direct channel are equals.
                ChannelKind::Direct => MemberRole::Admin,
                ChannelKind::Group => MemberRole::Member,
            },
            joined_at_ms: now,
            read_seq: 0,
        }));
        let stored = self.store.create_channel(&channel, &members).await?;
        let view = self.channel_view(app, creator, stored.id).await?;
        Ok((view, stored.id == channel.id))
    }

    /// The channel as `user` sees it; only members see it.
    pub async fn channel_view(&self, app: Id, user: Id, id: Id) -> Result<ChannelView> {
        let (channel, me) = self.membership(app, user, id).await?;
        let last = match channel.last_message_id {
            Some(m) => self
                .views(&self.store.messages_by_ids(&[m]).await?)
                .await?
                .pop(),
            None => None,
        };
        let mut view = ChannelView::new(&channel, Some(&me), last);
        let members = self.store.members(id).await?;
        view.members = Some(members.iter().map(MemberView::from).collect());
        Ok(view)
    }

    /// The channel and the user's membership, or 404 (no such channel in this app)
    /// or 403 (not a member).
    async fn membership(&self, app: Id, user: Id, id: Id) -> Result<(ChannelRecord, MemberRecord)> {
        let channel = self
            .store
            .channel(app, id)
            .await?
            .ok_or_else(|| Error::not_found("channel"))?;
        let me = self
            .store
            .member(id, user)
            .await?
            .ok_or_else(|| Error::Forbidden("you are not a member of this channel".into()))?;
        Ok((channel, me))
    }

    async fn channel_of_app(&self, app: Id, id: Id) -> Result<ChannelRecord> {
        self.store
            .channel(app, id)
            .await?
            .ok_or_else(|| Error::not_found("channel"))
    }

    pub async fn my_channels(
        &self,
        app: Id,
        user: Id,
        before: Option<ChannelCursor>,
        limit: u32,
    ) -> Result<Page<ChannelView>> {
        let rows = self.store.channels_of(app, user, before, limit + 1).await?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let last_ids: Vec<Id> = rows.iter().filter_map(|(c, _)| c.last_message_id).collect();
        let lasts = self
            .views(&self.store.messages_by_ids(&last_ids).await?)
            .await?;
        let items: Vec<ChannelView> = rows
            .iter()
            .map(|(c, m)| {
                let last = c
                    .last_message_id
                    .and_then(|id| lasts.iter().find(|v| v.id == id).cloned());
                ChannelView::new(c, Some(m), last)
            })
            .collect();
        let next_cursor = if more {
            rows.last().map(|(c, _)| {
                tidings_platform::page::encode_cursor(&format!("{}:{}", c.activity_ms, c.id))
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub fn parse_channel_cursor(cursor: &str) -> Result<ChannelCursor> {
        let raw = tidings_platform::page::decode_cursor("before", cursor)?;
        let bad = || Error::validation("before", "not a cursor this server issued");
        let (activity, id) = raw.split_once(':').ok_or_else(bad)?;
        Ok(ChannelCursor {
            activity_ms: activity.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }

    /// `PUT /v1/channels/{id}/members/{user}`: admins add anyone; anyone already a
    /// member may "add" themselves (a no-op).
    pub async fn add_member(&self, app: Id, actor: Id, id: Id, user: Id) -> Result<bool> {
        let (channel, me) = self.membership(app, actor, id).await?;
        if channel.kind == ChannelKind::Direct {
            return Err(Error::Conflict(
                "a direct channel's members are fixed".into(),
            ));
        }
        if user == actor {
            return Ok(false);
        }
        if me.role != MemberRole::Admin {
            return Err(Error::Forbidden("only a group's admins add members".into()));
        }
        self.check_users(app, &[user]).await?;
        let added = self
            .store
            .add_member(
                &MemberRecord {
                    channel_id: id,
                    user_id: user,
                    role: MemberRole::Member,
                    joined_at_ms: self.clock.now_ms(),
                    read_seq: 0,
                },
                self.settings.max_members,
            )
            .await
            .map_err(|e| match e {
                tidings_platform::StoreError::Conflict(_) => Error::Conflict(format!(
                    "the channel has its {} members already",
                    self.settings.max_members
                )),
                other => other.into(),
            })?;
        if added {
            self.members_changed(id).await;
        }
        Ok(added)
    }

    /// `DELETE /v1/channels/{id}/members/{user}`: a member may leave; admins remove
    /// others.
    pub async fn remove_member(&self, app: Id, actor: Id, id: Id, user: Id) -> Result<bool> {
        let (channel, me) = self.membership(app, actor, id).await?;
        if channel.kind == ChannelKind::Direct {
            return Err(Error::Conflict(
                "a direct channel's members are fixed".into(),
            ));
        }
        if user != actor && me.role != MemberRole::Admin {
            return Err(Error::Forbidden(
                "only a group's admins remove others".into(),
            ));
        }
        let removed = self.store.remove_member(id, user).await?;
        if removed {
            self.members_changed(id).await;
        }
        Ok(removed)
    }

    async fn members_changed(&self, channel: Id) {
        self.members.invalidate(channel);
        self.publish(BusEvent::Members { channel }).await;
    }

    fn check_text(&self, text: &str) -> Result<()> {
        let chars = text.chars().count();
        if text.trim().is_empty() {
            return Err(Error::validation("text", "text must not be empty"));
        }
        if chars > self.settings.text_chars {
            return Err(Error::validation(
                "text",
                format!(
                    "text is longer than {} characters",
                    self.settings.text_chars
                ),
            ));
        }
        Ok(())
    }

    /// Stores the message, then hands it to every member's sockets and pushes it to
    /// members with none. The answer means it is on disk.
    pub async fn send(
        self: &Arc<Self>,
        sender: Sender,
        channel_id: Id,
        client_msg_id: &str,
        text: &str,
    ) -> Result<MessageView> {
        if client_msg_id.is_empty()
            || client_msg_id.len() > CLIENT_MSG_ID_MAX
            || client_msg_id.chars().any(char::is_control)
        {
            return Err(Error::validation(
                "client_msg_id",
                format!("client_msg_id must be 1-{CLIENT_MSG_ID_MAX} printable bytes"),
            ));
        }
        self.check_text(text)?;
        // No channel read here: the append checks channel, app and membership inside
        // its transaction, which is the check that counts and saves a query per send.
        let message = NewMessage {
            id: self.ids.next_id(),
            app_id: sender.app,
            channel_id,
            sender_id: sender.user,
            client_msg_id: client_msg_id.to_owned(),
            text: text.to_owned(),
            created_at_ms: self.clock.now_ms(),
        };
        // Commit and publish in a task of their own: a caller that goes away (a
        // dropped request) must not leave a committed message unannounced.
        let this = self.clone();
        let work = tokio::spawn(async move {
            let appended = this.store.append_message(&message).await?;
            if let Appended::New(m) = &appended {
                this.announce(m, sender.origin).await;
            }
            Ok::<_, Error>(appended)
        });
        let appended = work
            .await
            .map_err(|e| Error::Internal(format!("send task: {e}")))??;
        match appended {
            Appended::New(m) => Ok(MessageView::new(&m, Vec::new())),
            Appended::Duplicate(m) => Ok(self.views(&[m]).await?.remove(0)),
            Appended::NotMember => {
                // Only a refusal pays for telling "no such channel" from "not yours".
                self.channel_of_app(sender.app, channel_id).await?;
                Err(Error::Forbidden(
                    "you are not a member of this channel".into(),
                ))
            }
        }
    }

    async fn announce(&self, m: &MessageRecord, origin: Option<ConnId>) {
        let members = match self.members.get(m.channel_id).await {
            Ok(members) => members,
            Err(e) => {
                // The hub finds the message in the store when the gap does not fill.
                tracing::warn!(error = %e, "cannot read members to announce a message");
                return;
            }
        };
        self.publish(BusEvent::Message {
            members: members.to_vec(),
            origin,
            message: m.clone(),
        })
        .await;
        if !self.settings.push_offline {
            return;
        }
        let others: Vec<Id> = members
            .iter()
            .copied()
            .filter(|u| *u != m.sender_id)
            .collect();
        if others.is_empty() {
            return;
        }
        match self.presence.states(&others, self.clock.now_ms()).await {
            Ok(states) => {
                let offline: Vec<Id> = states
                    .iter()
                    .filter(|s| !s.online)
                    .map(|s| s.user_id)
                    .collect();
                if !offline.is_empty() {
                    // The channel (its name titles the push) is read only now, when
                    // someone is offline, not on every send.
                    match self.store.channel(m.app_id, m.channel_id).await {
                        Ok(Some(channel)) => self.push.push(&channel, m, offline).await,
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a channel to push a message")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read presence to push a message"),
        }
    }

    /// Views with reactions, in the order given.
    async fn views(&self, messages: &[MessageRecord]) -> Result<Vec<MessageView>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Id> = messages.iter().map(|m| m.id).collect();
        let counts = self.store.reactions(&ids, REACTION_USERS).await?;
        Ok(MessageView::many(messages, &counts))
    }

    /// History in ascending seq; `next_cursor` pages further back.
    pub async fn history(
        &self,
        app: Id,
        user: Id,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Page<MessageView>> {
        if before_seq.is_some() && after_seq.is_some() {
            return Err(Error::validation(
                "before_seq",
                "give before_seq or after_seq, not both",
            ));
        }
        self.membership(app, user, channel).await?;
        self.history_unchecked(channel, before_seq, after_seq, limit)
            .await
    }

    /// History for the app's backend, which sees every channel of the app.
    pub async fn history_for_app(
        &self,
        app: Id,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Page<MessageView>> {
        self.channel_of_app(app, channel).await?;
        self.history_unchecked(channel, before_seq, after_seq, limit)
            .await
    }

    async fn history_unchecked(
        &self,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Page<MessageView>> {
        let rows = self
            .store
            .history(channel, before_seq, after_seq, limit)
            .await?;
        let next_cursor = match (after_seq, rows.first()) {
            // Paging backwards: more exist below the oldest returned.
            (None, Some(first)) if first.seq > 1 && rows.len() as u32 == limit => {
                Some(first.seq.to_string())
            }
            // Paging forwards: more may exist above the newest returned.
            (Some(_), Some(_)) if rows.len() as u32 == limit => {
                rows.last().map(|m| m.seq.to_string())
            }
            _ => None,
        };
        Ok(Page {
            items: self.views(&rows).await?,
            next_cursor,
        })
    }

    async fn own_message(
        &self,
        app: Id,
        actor: Option<Id>,
        channel: Id,
        id: Id,
    ) -> Result<MessageRecord> {
        self.channel_of_app(app, channel).await?;
        let m = self
            .store
            .message(channel, id)
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        if let Some(actor) = actor {
            if m.sender_id != actor {
                return Err(Error::Forbidden("only the sender changes a message".into()));
            }
        }
        if m.deleted {
            return Err(Error::NotFound("the message was deleted".into()));
        }
        Ok(m)
    }

    /// Edits by the sender (`actor`), or by the app (`None`).
    pub async fn edit(
        &self,
        app: Id,
        actor: Option<Id>,
        channel: Id,
        id: Id,
        text: &str,
    ) -> Result<MessageView> {
        self.check_text(text)?;
        self.own_message(app, actor, channel, id).await?;
        let m = self
            .store
            .edit_message(channel, id, text, self.clock.now_ms())
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        let view = self.views(&[m]).await?.remove(0);
        self.to_members(channel, None, frames::message_updated(&view))
            .await;
        Ok(view)
    }

    pub async fn delete(&self, app: Id, actor: Option<Id>, channel: Id, id: Id) -> Result<()> {
        self.own_message(app, actor, channel, id).await?;
        let m = self
            .store
            .delete_message(channel, id, self.clock.now_ms())
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        let view = MessageView::new(&m, Vec::new());
        self.to_members(channel, None, frames::message_deleted(&view))
            .await;
        Ok(())
    }

    pub async fn react(
        &self,
        app: Id,
        user: Id,
        channel: Id,
        id: Id,
        emoji: &str,
        on: bool,
    ) -> Result<bool> {
        if emoji.is_empty()
            || emoji.len() > EMOJI_MAX_BYTES
            || emoji.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::validation(
                "emoji",
                format!("an emoji is 1-{EMOJI_MAX_BYTES} bytes without spaces"),
            ));
        }
        self.membership(app, user, channel).await?;
        let m = self
            .store
            .message(channel, id)
            .await?
            .filter(|m| !m.deleted)
            .ok_or_else(|| Error::not_found("message"))?;
        let changed = self
            .store
            .set_reaction(m.id, user, emoji, on, self.clock.now_ms())
            .await?;
        if changed {
            self.to_members(
                channel,
                None,
                frames::reaction(channel, id, user, emoji, on),
            )
            .await;
        }
        Ok(changed)
    }

    /// Moves the reader's position and tells the other members.
    pub async fn mark_read(
        &self,
        app: Id,
        user: Id,
        channel: Id,
        seq: i64,
        origin: Option<ConnId>,
    ) -> Result<i64> {
        if seq < 0 {
            return Err(Error::validation("seq", "seq is not negative"));
        }
        self.channel_of_app(app, channel).await?;
        let at = self
            .store
            .mark_read(channel, user, seq)
            .await?
            .ok_or_else(|| Error::Forbidden("you are not a member of this channel".into()))?;
        self.to_members(channel, origin, frames::read(channel, user, at))
            .await;
        Ok(at)
    }

    /// Relays a typing frame to the other members; nothing is stored.
    pub async fn typing(&self, app: Id, user: Id, channel: Id) -> Result<()> {
        let members = self.members.get(channel).await?;
        if !members.contains(&user) {
            // Either not a member or no such channel: the same answer, no probing.
            self.channel_of_app(app, channel).await?;
            return Err(Error::Forbidden(
                "you are not a member of this channel".into(),
            ));
        }
        let others: Vec<Id> = members.iter().copied().filter(|u| *u != user).collect();
        self.publish(BusEvent::Users {
            users: others,
            skip: None,
            frame: frames::typing(channel, user),
        })
        .await;
        Ok(())
    }

    async fn to_members(&self, channel: Id, skip: Option<ConnId>, frame: String) {
        match self.members.get(channel).await {
            Ok(members) => {
                self.publish(BusEvent::Users {
                    users: members.to_vec(),
                    skip,
                    frame,
                })
                .await
            }
            Err(e) => tracing::warn!(error = %e, "cannot read members to relay a frame"),
        }
    }

    /// A frame for a user's sockets on whatever node they are (in-app notifications,
    /// feed items).
    pub async fn to_user(&self, user: Id, frame: String) {
        self.publish(BusEvent::Users {
            users: vec![user],
            skip: None,
            frame,
        })
        .await;
    }

    /// One page of what a device missed since `after_pos`.
    pub async fn sync_page(&self, app: Id, user: Id, after_pos: i64) -> Result<Vec<MessageRecord>> {
        Ok(self
            .store
            .sync_page(app, user, after_pos, self.settings.sync_page)
            .await?)
    }

    pub async fn presence_of(&self, app: Id, users: &[Id]) -> Result<Vec<PresenceView>> {
        let found = self.accounts.users_by_ids(app, users).await?;
        let known: Vec<Id> = users
            .iter()
            .copied()
            .filter(|u| found.iter().any(|f| f.id == *u))
            .collect();
        let states = self.presence.states(&known, self.clock.now_ms()).await?;
        Ok(states.iter().map(PresenceView::from).collect())
    }

    /// A socket came up: registers it and tells watchers if the user came online.
    pub async fn socket_up(&self, user: Id, conn: ConnId, ttl_ms: i64) -> Result<()> {
        let now = self.clock.now_ms();
        if self.presence.connect(user, conn, now, now + ttl_ms).await? {
            self.presence_changed(PresenceState {
                user_id: user,
                online: true,
                last_seen_ms: Some(now),
            })
            .await;
        }
        Ok(())
    }

    /// Keeps this node's sockets online for another `ttl_ms`.
    pub async fn sockets_alive(&self, sockets: &[(Id, ConnId)], ttl_ms: i64) -> Result<()> {
        let now = self.clock.now_ms();
        Ok(self.presence.refresh(sockets, now, now + ttl_ms).await?)
    }

    pub async fn socket_down(&self, user: Id, conn: ConnId) -> Result<()> {
        let now = self.clock.now_ms();
        if self.presence.disconnect(user, conn, now).await? {
            self.presence_changed(PresenceState {
                user_id: user,
                online: false,
                last_seen_ms: Some(now),
            })
            .await;
        }
        Ok(())
    }

    async fn presence_changed(&self, state: PresenceState) {
        self.publish(BusEvent::Presence {
            user: state.user_id,
            frame: frames::presence(&PresenceView::from(&state)),
        })
        .await;
    }

    /// Announces this gateway for service discovery.
    pub async fn announce_node(&self, info: &NodeInfo, ttl_ms: i64) -> Result<()> {
        let expires = self.clock.now_ms() + ttl_ms;
        Ok(self.registry.announce(info, expires).await?)
    }

    pub async fn withdraw_node(&self, node: u16) -> Result<()> {
        Ok(self.registry.withdraw(node).await?)
    }

    /// The URL of the least-loaded live gateway, if any announced itself.
    pub async fn pick_gateway(&self) -> Result<Option<String>> {
        let nodes = self.registry.live_nodes(self.clock.now_ms()).await?;
        Ok(least_loaded(&nodes).map(|n| n.url.clone()))
    }
}
