//! The chat service's tables on PostgreSQL. An append locks its channel's row
//! (per-channel seq, and dedup of a resend that races the first send) and then the
//! one `chat_log` row (the installation-wide position), in that order everywhere, so
//! appends never deadlock and positions follow commit order.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;
use tidings_chat::model::{
    Appended, ChannelKind, ChannelRecord, MemberRecord, MemberRole, MessageRecord, NewMessage,
    ReactionCount,
};
use tidings_chat::store::{ChannelCursor, ChatStore};
use tidings_platform::store::StoreResult;
use tidings_platform::{Id, StoreError};

use crate::error::map;
use crate::PostgresStore;

const CHANNEL_COLUMNS: &str = "id, app_id, kind, name, created_by, direct_key, created_at, \
     last_seq, last_message_id, activity, member_count";
const MEMBER_COLUMNS: &str = "channel_id, user_id, role, joined_at, read_seq";
const MESSAGE_COLUMNS: &str = "id, app_id, channel_id, seq, pos, sender_id, client_msg_id, \
     text, created_at, edited_at, deleted";

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(what.to_owned().into())
}

fn channel_from_row(r: &PgRow) -> Result<ChannelRecord, sqlx::Error> {
    let kind: String = r.try_get(2)?;
    Ok(ChannelRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        kind: ChannelKind::parse(&kind).ok_or_else(|| decode_err("unknown channel kind"))?,
        name: r.try_get(3)?,
        created_by: Id(r.try_get(4)?),
        direct_key: r.try_get(5)?,
        created_at_ms: r.try_get(6)?,
        last_seq: r.try_get(7)?,
        last_message_id: r.try_get::<Option<i64>, _>(8)?.map(Id),
        activity_ms: r.try_get(9)?,
        member_count: r.try_get(10)?,
    })
}

fn member_at(r: &PgRow, offset: usize) -> Result<MemberRecord, sqlx::Error> {
    let role: String = r.try_get(offset + 2)?;
    Ok(MemberRecord {
        channel_id: Id(r.try_get(offset)?),
        user_id: Id(r.try_get(offset + 1)?),
        role: MemberRole::parse(&role).ok_or_else(|| decode_err("unknown role"))?,
        joined_at_ms: r.try_get(offset + 3)?,
        read_seq: r.try_get(offset + 4)?,
    })
}

fn message_from_row(r: &PgRow) -> Result<MessageRecord, sqlx::Error> {
    Ok(MessageRecord {
        id: Id(r.try_get(0)?),
        app_id: Id(r.try_get(1)?),
        channel_id: Id(r.try_get(2)?),
        seq: r.try_get(3)?,
        pos: r.try_get(4)?,
        sender_id: Id(r.try_get(5)?),
        client_msg_id: r.try_get(6)?,
        text: r.try_get(7)?,
        created_at_ms: r.try_get(8)?,
        edited_at_ms: r.try_get(9)?,
        deleted: r.try_get(10)?,
    })
}

fn messages(rows: Vec<PgRow>) -> StoreResult<Vec<MessageRecord>> {
    rows.iter()
        .map(message_from_row)
        .collect::<Result<_, _>>()
        .map_err(map)
}

fn raw(ids: &[Id]) -> Vec<i64> {
    ids.iter().map(|i| i.0).collect()
}

fn prefixed(columns: &str, prefix: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{prefix}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PostgresStore {
    async fn channel_by_id(&self, app: Option<Id>, id: Id) -> StoreResult<Option<ChannelRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM chat_channels WHERE id = $1 AND ($2::BIGINT IS NULL OR app_id = $2)"
        ))
        .bind(id.0)
        .bind(app.map(|a| a.0))
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref().map(channel_from_row).transpose().map_err(map)
    }
}

#[async_trait]
impl ChatStore for PostgresStore {
    async fn create_channel(
        &self,
        channel: &ChannelRecord,
        members: &[MemberRecord],
    ) -> StoreResult<ChannelRecord> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO chat_channels ({CHANNEL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (app_id, direct_key) WHERE direct_key IS NOT NULL DO NOTHING"
        ))
        .bind(channel.id.0)
        .bind(channel.app_id.0)
        .bind(channel.kind.as_str())
        .bind(&channel.name)
        .bind(channel.created_by.0)
        .bind(&channel.direct_key)
        .bind(channel.created_at_ms)
        .bind(channel.last_seq)
        .bind(channel.last_message_id.map(|i| i.0))
        .bind(channel.activity_ms)
        .bind(members.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await.map_err(map)?;
            let row = sqlx::query(&format!(
                "SELECT {CHANNEL_COLUMNS} FROM chat_channels WHERE app_id = $1 AND direct_key = $2"
            ))
            .bind(channel.app_id.0)
            .bind(&channel.direct_key)
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
            return channel_from_row(&row).map_err(map);
        }
        let channels: Vec<i64> = members.iter().map(|m| m.channel_id.0).collect();
        let users: Vec<i64> = members.iter().map(|m| m.user_id.0).collect();
        let roles: Vec<&str> = members.iter().map(|m| m.role.as_str()).collect();
        let joined: Vec<i64> = members.iter().map(|m| m.joined_at_ms).collect();
        let read: Vec<i64> = members.iter().map(|m| m.read_seq).collect();
        sqlx::query(&format!(
            "INSERT INTO chat_members ({MEMBER_COLUMNS}) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[])"
        ))
        .bind(&channels)
        .bind(&users)
        .bind(&roles)
        .bind(&joined)
        .bind(&read)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        self.channel_by_id(None, channel.id)
            .await?
            .ok_or_else(|| StoreError::Backend("channel vanished".into()))
    }

    async fn channel(&self, app: Id, id: Id) -> StoreResult<Option<ChannelRecord>> {
        self.channel_by_id(Some(app), id).await
    }

    async fn member(&self, channel: Id, user: Id) -> StoreResult<Option<MemberRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM chat_members WHERE channel_id = $1 AND user_id = $2"
        ))
        .bind(channel.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.as_ref()
            .map(|r| member_at(r, 0))
            .transpose()
            .map_err(map)
    }

    async fn member_ids(&self, channel: Id) -> StoreResult<Vec<Id>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM chat_members WHERE channel_id = $1 ORDER BY user_id",
        )
        .bind(channel.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(ids.into_iter().map(Id).collect())
    }

    async fn members(&self, channel: Id) -> StoreResult<Vec<MemberRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM chat_members WHERE channel_id = $1 ORDER BY user_id"
        ))
        .bind(channel.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| member_at(r, 0))
            .collect::<Result<_, _>>()
            .map_err(map)
    }

    async fn add_member(&self, member: &MemberRecord, max_members: u32) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let count: Option<i64> =
            sqlx::query_scalar("SELECT member_count FROM chat_channels WHERE id = $1 FOR UPDATE")
                .bind(member.channel_id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let Some(count) = count else {
            return Ok(false);
        };
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM chat_members WHERE channel_id = $1 AND user_id = $2)",
        )
        .bind(member.channel_id.0)
        .bind(member.user_id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if exists {
            return Ok(false);
        }
        if count >= i64::from(max_members) {
            return Err(StoreError::Conflict("channel_full".into()));
        }
        sqlx::query(&format!(
            "INSERT INTO chat_members ({MEMBER_COLUMNS}) \
             SELECT $1, $2, $3, $4, last_seq FROM chat_channels WHERE id = $1"
        ))
        .bind(member.channel_id.0)
        .bind(member.user_id.0)
        .bind(member.role.as_str())
        .bind(member.joined_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query("UPDATE chat_channels SET member_count = member_count + 1 WHERE id = $1")
            .bind(member.channel_id.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn remove_member(&self, channel: Id, user: Id) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let removed =
            sqlx::query("DELETE FROM chat_members WHERE channel_id = $1 AND user_id = $2")
                .bind(channel.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(map)?
                .rows_affected();
        if removed > 0 {
            sqlx::query("UPDATE chat_channels SET member_count = member_count - 1 WHERE id = $1")
                .bind(channel.0)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(removed > 0)
    }

    async fn channels_of(
        &self,
        app: Id,
        user: Id,
        before: Option<ChannelCursor>,
        limit: u32,
    ) -> StoreResult<Vec<(ChannelRecord, MemberRecord)>> {
        let rows = sqlx::query(&format!(
            "SELECT {}, {} FROM chat_members m JOIN chat_channels ch ON ch.id = m.channel_id \
             WHERE m.user_id = $1 AND ch.app_id = $2 \
               AND ($3::BIGINT IS NULL OR (ch.activity, ch.id) < ($3, $4)) \
             ORDER BY ch.activity DESC, ch.id DESC LIMIT $5",
            prefixed(CHANNEL_COLUMNS, "ch"),
            prefixed(MEMBER_COLUMNS, "m"),
        ))
        .bind(user.0)
        .bind(app.0)
        .bind(before.map(|b| b.activity_ms))
        .bind(before.map(|b| b.id.0).unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| Ok((channel_from_row(r)?, member_at(r, 11)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map)
    }

    async fn append_message(&self, m: &NewMessage) -> StoreResult<Appended> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        // The channel row lock serializes appends to one channel, which makes both
        // the seq and the resend check below race-free.
        let locked: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM chat_channels WHERE id = $1 AND app_id = $2 FOR UPDATE",
        )
        .bind(m.channel_id.0)
        .bind(m.app_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM chat_members WHERE channel_id = $1 AND user_id = $2)",
        )
        .bind(m.channel_id.0)
        .bind(m.sender_id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if locked.is_none() || !member {
            tx.rollback().await.map_err(map)?;
            return Ok(Appended::NotMember);
        }
        let first = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages \
             WHERE channel_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        ))
        .bind(m.channel_id.0)
        .bind(m.sender_id.0)
        .bind(&m.client_msg_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if let Some(row) = first {
            tx.rollback().await.map_err(map)?;
            return Ok(Appended::Duplicate(message_from_row(&row).map_err(map)?));
        }
        let seq: i64 = sqlx::query_scalar(
            "UPDATE chat_channels SET last_seq = last_seq + 1, last_message_id = $2, \
             activity = GREATEST(activity, $3) WHERE id = $1 RETURNING last_seq",
        )
        .bind(m.channel_id.0)
        .bind(m.id.0)
        .bind(m.created_at_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query(
            "UPDATE chat_members SET read_seq = GREATEST(read_seq, $3) \
             WHERE channel_id = $1 AND user_id = $2",
        )
        .bind(m.channel_id.0)
        .bind(m.sender_id.0)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        // Last, so the installation-wide lock is held for as short as possible.
        let pos: i64 = sqlx::query_scalar("UPDATE chat_log SET pos = pos + 1 RETURNING pos")
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(&format!(
            "INSERT INTO chat_messages ({MESSAGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, FALSE)"
        ))
        .bind(m.id.0)
        .bind(m.app_id.0)
        .bind(m.channel_id.0)
        .bind(seq)
        .bind(pos)
        .bind(m.sender_id.0)
        .bind(&m.client_msg_id)
        .bind(&m.text)
        .bind(m.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(Appended::New(MessageRecord {
            id: m.id,
            app_id: m.app_id,
            channel_id: m.channel_id,
            seq,
            pos,
            sender_id: m.sender_id,
            client_msg_id: m.client_msg_id.clone(),
            text: m.text.clone(),
            created_at_ms: m.created_at_ms,
            edited_at_ms: None,
            deleted: false,
        }))
    }

    async fn message(&self, channel: Id, id: Id) -> StoreResult<Option<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1 AND channel_id = $2"
        ))
        .bind(id.0)
        .bind(channel.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(messages(rows)?.into_iter().next())
    }

    async fn messages_by_ids(&self, ids: &[Id]) -> StoreResult<Vec<MessageRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = ANY($1)"
        ))
        .bind(raw(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        messages(rows)
    }

    async fn history(
        &self,
        channel: Id,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        let (sql, bound) = match after_seq {
            Some(after) => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM chat_messages \
                     WHERE channel_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
                ),
                after,
            ),
            None => (
                format!(
                    "SELECT {MESSAGE_COLUMNS} FROM chat_messages \
                     WHERE channel_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
                ),
                before_seq.unwrap_or(i64::MAX),
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(channel.0)
            .bind(bound)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        let mut out = messages(rows)?;
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    async fn edit_message(
        &self,
        channel: Id,
        id: Id,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "UPDATE chat_messages SET text = $3, edited_at = $4 \
             WHERE id = $1 AND channel_id = $2 AND NOT deleted RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(id.0)
        .bind(channel.0)
        .bind(text)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(messages(rows)?.into_iter().next())
    }

    async fn delete_message(
        &self,
        channel: Id,
        id: Id,
        now_ms: i64,
    ) -> StoreResult<Option<MessageRecord>> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let rows = sqlx::query(&format!(
            "UPDATE chat_messages SET text = '', deleted = TRUE, edited_at = $3 \
             WHERE id = $1 AND channel_id = $2 RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(id.0)
        .bind(channel.0)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
        sqlx::query("DELETE FROM chat_reactions WHERE message_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(messages(rows)?.into_iter().next())
    }

    async fn set_reaction(
        &self,
        message: Id,
        user: Id,
        emoji: &str,
        on: bool,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let q = if on {
            sqlx::query(
                "INSERT INTO chat_reactions (message_id, emoji, user_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(message.0)
            .bind(emoji)
            .bind(user.0)
            .bind(now_ms)
        } else {
            sqlx::query(
                "DELETE FROM chat_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
            )
            .bind(message.0)
            .bind(emoji)
            .bind(user.0)
        };
        let changed = q.execute(&self.pool).await.map_err(map)?.rows_affected();
        Ok(changed > 0)
    }

    async fn reactions(
        &self,
        messages: &[Id],
        users_per_emoji: u32,
    ) -> StoreResult<Vec<ReactionCount>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT message_id, emoji, COUNT(*), \
                    (ARRAY_AGG(user_id ORDER BY created_at, user_id))[1:$2] \
             FROM chat_reactions WHERE message_id = ANY($1) \
             GROUP BY message_id, emoji ORDER BY message_id, emoji",
        )
        .bind(raw(messages))
        .bind(i64::from(users_per_emoji))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.iter()
            .map(|r| {
                let users: Vec<i64> = r.try_get(3)?;
                Ok(ReactionCount {
                    message_id: Id(r.try_get(0)?),
                    emoji: r.try_get(1)?,
                    count: r.try_get(2)?,
                    user_ids: users.into_iter().map(Id).collect(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map)
    }

    async fn mark_read(&self, channel: Id, user: Id, seq: i64) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "UPDATE chat_members SET read_seq = GREATEST(read_seq, \
               LEAST($3, (SELECT last_seq FROM chat_channels WHERE id = $1))) \
             WHERE channel_id = $1 AND user_id = $2 RETURNING read_seq",
        )
        .bind(channel.0)
        .bind(user.0)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)
    }

    async fn sync_page(
        &self,
        app: Id,
        user: Id,
        after_pos: i64,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM chat_members m \
             JOIN chat_messages msg ON msg.channel_id = m.channel_id AND msg.pos > $2 \
             WHERE m.user_id = $1 AND msg.app_id = $3 ORDER BY msg.pos LIMIT $4",
            prefixed(MESSAGE_COLUMNS, "msg")
        ))
        .bind(user.0)
        .bind(after_pos)
        .bind(app.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        messages(rows)
    }

    async fn messages_by_pos(&self, from_pos: i64, to_pos: i64) -> StoreResult<Vec<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE pos BETWEEN $1 AND $2 ORDER BY pos"
        ))
        .bind(from_pos)
        .bind(to_pos)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        messages(rows)
    }

    async fn log_head(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT pos FROM chat_log")
            .fetch_one(&self.pool)
            .await
            .map_err(map)
    }
}
