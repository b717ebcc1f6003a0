//! The chat service's tables on SQLite. The single writer makes the log position
//! trivial: the next `pos` is one past the highest, read inside the committing
//! transaction, so positions are gap-free and in commit order.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_chat::model::{
    Appended, ChannelKind, ChannelRecord, MemberRecord, MemberRole, MessageRecord, NewMessage,
    ReactionCount,
};
use tidings_chat::store::{ChannelCursor, ChatStore};
use tidings_platform::store::StoreResult;
use tidings_platform::{Id, StoreError};

use crate::error::map;
use crate::SqliteStore;

const CHANNEL_COLUMNS: &str = "id, app_id, kind, name, created_by, direct_key, created_at, \
     last_seq, last_message_id, activity, member_count";
const MEMBER_COLUMNS: &str = "channel_id, user_id, role, joined_at, read_seq";
const MESSAGE_COLUMNS: &str = "id, app_id, channel_id, seq, pos, sender_id, client_msg_id, \
     text, created_at, edited_at, deleted";

fn bad_value(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        what.to_owned().into(),
    )
}

fn channel_from_row(r: &Row<'_>) -> rusqlite::Result<ChannelRecord> {
    let kind: String = r.get(2)?;
    Ok(ChannelRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        kind: ChannelKind::parse(&kind).ok_or_else(|| bad_value(2, "unknown channel kind"))?,
        name: r.get(3)?,
        created_by: Id(r.get(4)?),
        direct_key: r.get(5)?,
        created_at_ms: r.get(6)?,
        last_seq: r.get(7)?,
        last_message_id: r.get::<_, Option<i64>>(8)?.map(Id),
        activity_ms: r.get(9)?,
        member_count: r.get(10)?,
    })
}

/// A member row read at `offset` columns into the row.
fn member_at(r: &Row<'_>, offset: usize) -> rusqlite::Result<MemberRecord> {
    let role: String = r.get(offset + 2)?;
    Ok(MemberRecord {
        channel_id: Id(r.get(offset)?),
        user_id: Id(r.get(offset + 1)?),
        role: MemberRole::parse(&role).ok_or_else(|| bad_value(offset + 2, "unknown role"))?,
        joined_at_ms: r.get(offset + 3)?,
        read_seq: r.get(offset + 4)?,
    })
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        id: Id(r.get(0)?),
        app_id: Id(r.get(1)?),
        channel_id: Id(r.get(2)?),
        seq: r.get(3)?,
        pos: r.get(4)?,
        sender_id: Id(r.get(5)?),
        client_msg_id: r.get(6)?,
        text: r.get(7)?,
        created_at_ms: r.get(8)?,
        edited_at_ms: r.get(9)?,
        deleted: r.get::<_, i64>(10)? != 0,
    })
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> StoreResult<Vec<T>> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map)
}

fn messages_where(
    c: &Connection,
    clause: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<MessageRecord>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE {clause}"
        ))
        .map_err(map)?;
    let rows = stmt.query_map(params, message_from_row).map_err(map)?;
    collect(rows)
}

fn channel_by_id(c: &Connection, app: Option<Id>, id: Id) -> StoreResult<Option<ChannelRecord>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM chat_channels WHERE id = ?1 AND (?2 IS NULL OR app_id = ?2)"
        ))
        .map_err(map)?;
    stmt.query_row(params![id.0, app.map(|a| a.0)], channel_from_row)
        .optional()
        .map_err(map)
}

#[async_trait]
impl ChatStore for SqliteStore {
    async fn create_channel(
        &self,
        channel: &ChannelRecord,
        members: &[MemberRecord],
    ) -> StoreResult<ChannelRecord> {
        let channel = channel.clone();
        let members = members.to_vec();
        self.write_raw(move |c| {
            if let Some(key) = &channel.direct_key {
                let existing: Option<i64> = c
                    .prepare_cached(
                        "SELECT id FROM chat_channels WHERE app_id = ?1 AND direct_key = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![channel.app_id.0, key], |r| r.get(0))
                            .optional()
                    })
                    .map_err(map)?;
                if let Some(id) = existing {
                    return channel_by_id(c, None, Id(id))?
                        .ok_or_else(|| StoreError::Backend("direct channel vanished".into()));
                }
            }
            c.prepare_cached(&format!(
                "INSERT INTO chat_channels ({CHANNEL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    channel.id.0,
                    channel.app_id.0,
                    channel.kind.as_str(),
                    channel.name,
                    channel.created_by.0,
                    channel.direct_key,
                    channel.created_at_ms,
                    channel.last_seq,
                    channel.last_message_id.map(|i| i.0),
                    channel.activity_ms,
                    members.len() as i64,
                ])
            })
            .map_err(map)?;
            let mut insert = c
                .prepare_cached(&format!(
                    "INSERT INTO chat_members ({MEMBER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
                ))
                .map_err(map)?;
            for m in &members {
                insert
                    .execute(params![
                        m.channel_id.0,
                        m.user_id.0,
                        m.role.as_str(),
                        m.joined_at_ms,
                        m.read_seq
                    ])
                    .map_err(map)?;
            }
            channel_by_id(c, None, channel.id)?
                .ok_or_else(|| StoreError::Backend("channel vanished".into()))
        })
        .await
    }

    async fn channel(&self, app: Id, id: Id) -> StoreResult<Option<ChannelRecord>> {
        self.read_raw(move |c| channel_by_id(c, Some(app), id))
            .await
    }

    async fn member(&self, channel: Id, user: Id) -> StoreResult<Option<MemberRecord>> {
        self.read_raw(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MEMBER_COLUMNS} FROM chat_members WHERE channel_id = ?1 AND user_id = ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![channel.0, user.0], |r| member_at(r, 0))
                    .optional()
            })
            .map_err(map)
        })
        .await
    }

    async fn member_ids(&self, channel: Id) -> StoreResult<Vec<Id>> {
        self.read_raw(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT user_id FROM chat_members WHERE channel_id = ?1 ORDER BY user_id",
                )
                .map_err(map)?;
            let rows = stmt
                .query_map(params![channel.0], |r| r.get(0).map(Id))
                .map_err(map)?;
            collect(rows)
        })
        .await
    }

    async fn members(&self, channel: Id) -> StoreResult<Vec<MemberRecord>> {
        self.read_raw(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM chat_members WHERE channel_id = ?1 ORDER BY user_id"
                ))
                .map_err(map)?;
            let rows = stmt
                .query_map(params![channel.0], |r| member_at(r, 0))
                .map_err(map)?;
            collect(rows)
        })
        .await
    }

    async fn add_member(&self, member: &MemberRecord, max_members: u32) -> StoreResult<bool> {
        let m = member.clone();
        self.write_raw(move |c| {
            let count: Option<i64> = c
                .prepare_cached("SELECT member_count FROM chat_channels WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row(params![m.channel_id.0], |r| r.get(0))
                        .optional()
                })
                .map_err(map)?;
            let Some(count) = count else {
                return Ok(false);
            };
            let exists: bool = c
                .prepare_cached("SELECT 1 FROM chat_members WHERE channel_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.exists(params![m.channel_id.0, m.user_id.0]))
                .map_err(map)?;
            if exists {
                return Ok(false);
            }
            if count >= i64::from(max_members) {
                return Err(StoreError::Conflict("channel_full".into()));
            }
            // A new member starts with everything before joining read.
            c.prepare_cached(&format!(
                "INSERT INTO chat_members ({MEMBER_COLUMNS}) \
                 SELECT ?1, ?2, ?3, ?4, last_seq FROM chat_channels WHERE id = ?1"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    m.channel_id.0,
                    m.user_id.0,
                    m.role.as_str(),
                    m.joined_at_ms
                ])
            })
            .map_err(map)?;
            c.prepare_cached(
                "UPDATE chat_channels SET member_count = member_count + 1 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![m.channel_id.0]))
            .map_err(map)?;
            Ok(true)
        })
        .await
    }

    async fn remove_member(&self, channel: Id, user: Id) -> StoreResult<bool> {
        self.write_raw(move |c| {
            let removed = c
                .prepare_cached("DELETE FROM chat_members WHERE channel_id = ?1 AND user_id = ?2")
                .and_then(|mut s| s.execute(params![channel.0, user.0]))
                .map_err(map)?;
            if removed > 0 {
                c.prepare_cached(
                    "UPDATE chat_channels SET member_count = member_count - 1 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![channel.0]))
                .map_err(map)?;
            }
            Ok(removed > 0)
        })
        .await
    }

    async fn channels_of(
        &self,
        app: Id,
        user: Id,
        before: Option<ChannelCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(ChannelRecord, MemberRecord)>> {
        self.read_raw(move |c| {
            let columns: String = CHANNEL_COLUMNS
                .split(", ")
                .map(|col| format!("ch.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {columns}, m.channel_id, m.user_id, m.role, m.joined_at, m.read_seq \
                     FROM chat_members m JOIN chat_channels ch ON ch.id = m.channel_id \
                     WHERE m.user_id = ?1 AND ch.app_id = ?2 \
                       AND (?3 IS NULL OR ch.activity < ?3 OR (ch.activity = ?3 AND ch.id < ?4)) \
                     ORDER BY ch.activity DESC, ch.id DESC LIMIT ?5"
                ))
                .map_err(map)?;
            let rows = stmt
                .query_map(
                    params![
                        user.0,
                        app.0,
                        before.map(|b| b.activity_ms),
                        before.map(|b| b.id.0),
                        limit
                    ],
                    |r| Ok((channel_from_row(r)?, member_at(r, 11)?)),
                )
                .map_err(map)?;
            collect(rows)
        })
        .await
    }

    async fn append_message(&self, message: &NewMessage) -> StoreResult<Appended> {
        let m = message.clone();
        self.write_raw(move |c| {
            let member: bool = c
                .prepare_cached(
                    "SELECT 1 FROM chat_members m JOIN chat_channels ch ON ch.id = m.channel_id \
                     WHERE m.channel_id = ?1 AND m.user_id = ?2 AND ch.app_id = ?3",
                )
                .and_then(|mut s| s.exists(params![m.channel_id.0, m.sender_id.0, m.app_id.0]))
                .map_err(map)?;
            if !member {
                return Ok(Appended::NotMember);
            }
            let first = messages_where(
                c,
                "channel_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3",
                params![m.channel_id.0, m.sender_id.0, m.client_msg_id],
            )?;
            if let Some(first) = first.into_iter().next() {
                return Ok(Appended::Duplicate(first));
            }
            let seq: i64 = c
                .prepare_cached(
                    "UPDATE chat_channels SET last_seq = last_seq + 1, last_message_id = ?2, \
                     activity = MAX(activity, ?3) WHERE id = ?1 RETURNING last_seq",
                )
                .and_then(|mut s| {
                    s.query_row(params![m.channel_id.0, m.id.0, m.created_at_ms], |r| {
                        r.get(0)
                    })
                })
                .map_err(map)?;
            let pos: i64 = c
                .prepare_cached("SELECT COALESCE(MAX(pos), 0) + 1 FROM chat_messages")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(map)?;
            c.prepare_cached(&format!(
                "INSERT INTO chat_messages ({MESSAGE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 0)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    m.id.0,
                    m.app_id.0,
                    m.channel_id.0,
                    seq,
                    pos,
                    m.sender_id.0,
                    m.client_msg_id,
                    m.text,
                    m.created_at_ms
                ])
            })
            .map_err(map)?;
            c.prepare_cached(
                "UPDATE chat_members SET read_seq = MAX(read_seq, ?3) \
                 WHERE channel_id = ?1 AND user_id = ?2",
            )
            .and_then(|mut s| s.execute(params![m.channel_id.0, m.sender_id.0, seq]))
            .map_err(map)?;
            Ok(Appended::New(MessageRecord {
                id: m.id,
                app_id: m.app_id,
                channel_id: m.channel_id,
                seq,
                pos,
                sender_id: m.sender_id,
                client_msg_id: m.client_msg_id,
                text: m.text,
                created_at_ms: m.created_at_ms,
                edited_at_ms: None,
                deleted: false,
            }))
        })
        .await
    }

    async fn message(&self, channel: Id, id: Id) -> StoreResult<Option<MessageRecord>> {
        self.read_raw(move |c| {
            Ok(
                messages_where(c, "id = ?1 AND channel_id = ?2", params![id.0, channel.0])?
                    .into_iter()
                    .next(),
            )
        })
        .await
    }

    async fn messages_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<MessageRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.iter().map(|i| i.0).collect::<Vec<_>>();
        self.read_raw(move |c| messages_where(c, "id IN rarray(?1)", params![crate::id_array(ids)]))
            .await
    }

    async fn history(
        &self,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.read_raw(move |c| {
            let mut rows = match after_seq {
                Some(after) => messages_where(
                    c,
                    "channel_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3",
                    params![channel.0, after, limit],
                )?,
                None => {
                    let mut rows = messages_where(
                        c,
                        "channel_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                        params![channel.0, before_seq.unwrap_or(i64::MAX), limit],
                    )?;
                    rows.reverse();
                    rows
                }
            };
            rows.sort_by_key(|m| m.seq);
            Ok(rows)
        })
        .await
    }

    async fn edit_message(
        &self,
        channel: Id,
        id: Id,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>> {
        let text = text.to_owned();
        self.write_raw(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE chat_messages SET text = ?3, edited_at = ?4 \
                     WHERE id = ?1 AND channel_id = ?2 AND deleted = 0",
                )
                .and_then(|mut s| s.execute(params![id.0, channel.0, text, now_ms]))
                .map_err(map)?;
            if changed == 0 {
                return Ok(None);
            }
            Ok(messages_where(c, "id = ?1", params![id.0])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn delete_message(
        &self,
        channel: Id,
        id: Id,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>> {
        self.write_raw(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE chat_messages SET text = '', deleted = 1, edited_at = ?3 \
                     WHERE id = ?1 AND channel_id = ?2",
                )
                .and_then(|mut s| s.execute(params![id.0, channel.0, now_ms]))
                .map_err(map)?;
            if changed == 0 {
                return Ok(None);
            }
            c.prepare_cached("DELETE FROM chat_reactions WHERE message_id = ?1")
                .and_then(|mut s| s.execute(params![id.0]))
                .map_err(map)?;
            Ok(messages_where(c, "id = ?1", params![id.0])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn set_reaction(
        &self,
        message: Id,
        user: Id,
        emoji: &str,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let emoji = emoji.to_owned();
        self.write_raw(move |c| {
            let changed = if on {
                c.prepare_cached(
                    "INSERT INTO chat_reactions (message_id, emoji, user_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![message.0, emoji, user.0, now_ms]))
            } else {
                c.prepare_cached(
                    "DELETE FROM chat_reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3",
                )
                .and_then(|mut s| s.execute(params![message.0, emoji, user.0]))
            }
            .map_err(map)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn reactions(
        &self,
        messages: &[Id],
        users_per_emoji: u32,
    ) -> StoreResult<Vec<ReactionCount>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let messages = messages.iter().map(|i| i.0).collect::<Vec<_>>();
        self.read_raw(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT message_id, emoji, user_id FROM chat_reactions \
                     WHERE message_id IN rarray(?1) ORDER BY message_id, emoji, created_at, user_id",
                )
                .map_err(map)?;
            let rows = stmt
                .query_map(params![crate::id_array(messages)], |r| {
                    Ok((Id(r.get(0)?), r.get::<_, String>(1)?, Id(r.get(2)?)))
                })
                .map_err(map)?;
            let mut out: Vec<ReactionCount> = Vec::new();
            for row in rows {
                let (message_id, emoji, user) = row.map_err(map)?;
                match out.last_mut() {
                    Some(last) if last.message_id == message_id && last.emoji == emoji => {
                        last.count += 1;
                        if last.user_ids.len() < users_per_emoji as usize {
                            last.user_ids.push(user);
                        }
                    }
                    _ => out.push(ReactionCount {
                        message_id,
                        emoji,
                        count: 1,
                        user_ids: if users_per_emoji > 0 {
                            vec![user]
                        } else {
                            Vec::new()
                        },
                    }),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn mark_read(&self, channel: Id, user: Id, seq: i64) -> StoreResult<Option<i64>> {
        self.write_raw(move |c| {
            c.prepare_cached(
                "UPDATE chat_members SET read_seq = MAX(read_seq, \
                   MIN(?3, (SELECT last_seq FROM chat_channels WHERE id = ?1))) \
                 WHERE channel_id = ?1 AND user_id = ?2 RETURNING read_seq",
            )
            .and_then(|mut s| {
                s.query_row(params![channel.0, user.0, seq], |r| r.get(0))
                    .optional()
            })
            .map_err(map)
        })
        .await
    }

    async fn sync_page(
        &self,
        app: Id,
        user: Id,
        after_pos: i64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.read_raw(move |c| {
            let columns: String = MESSAGE_COLUMNS
                .split(", ")
                .map(|col| format!("msg.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {columns} FROM chat_members m \
                     JOIN chat_messages msg ON msg.channel_id = m.channel_id AND msg.pos > ?2 \
                     WHERE m.user_id = ?1 AND msg.app_id = ?3 ORDER BY msg.pos LIMIT ?4"
                ))
                .map_err(map)?;
            let rows = stmt
                .query_map(params![user.0, after_pos, app.0, limit], message_from_row)
                .map_err(map)?;
            collect(rows)
        })
        .await
    }

    async fn messages_by_pos(&self, from_pos: i64, to_pos: i64) -> StoreResult<Vec<MessageRecord>> {
        self.read_raw(move |c| {
            messages_where(
                c,
                "pos >= ?1 AND pos <= ?2 ORDER BY pos",
                params![from_pos, to_pos],
            )
        })
        .await
    }

    async fn log_head(&self) -> StoreResult<i64> {
        self.read_raw(|c| {
            c.prepare_cached("SELECT COALESCE(MAX(pos), 0) FROM chat_messages")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(map)
        })
        .await
    }
}
