//! Chat over HTTP.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, Page, Socket};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    pub seq: i64,
    pub sender_id: String,
    pub client_msg_id: String,
    pub text: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub role: String,
    pub joined_at: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    pub kind: String,
    pub name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub member_count: i64,
    pub last_seq: i64,
    pub role: Option<String>,
    pub read_seq: Option<i64>,
    pub unread_count: i64,
    pub last_message: Option<Message>,
    #[serde(default)]
    pub members: Option<Vec<Member>>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Presence {
    pub user_id: String,
    pub status: String,
    pub last_seen_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
}

/// Bounds of a history page.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    pub limit: Option<u32>,
}

impl Client {
    /// Creates a group (`kind: "group"`, a name, members) or opens the direct channel
    /// with one other user (`kind: "direct"`).
    pub async fn create_channel(
        &self,
        kind: &str,
        name: Option<&str>,
        members: &[&str],
    ) -> Result<Channel, Error> {
        let mut body = serde_json::json!({"kind": kind, "members": members});
        if let Some(name) = name {
            body["name"] = name.into();
        }
        self.with_body(Method::POST, "/v1/channels", &body).await
    }

    pub async fn my_channels(
        &self,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<Channel>, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(l) = limit {
            params.push(("limit", l.to_string()));
        }
        if let Some(b) = before {
            params.push(("before", b.to_owned()));
        }
        self.send(self.request(Method::GET, "/v1/me/channels").query(&params))
            .await
    }

    pub async fn channel(&self, id: &str) -> Result<Channel, Error> {
        self.get(&format!("/v1/channels/{id}")).await
    }

    pub async fn add_member(&self, channel: &str, user: &str) -> Result<(), Error> {
        self.send_empty(self.request(
            Method::PUT,
            &format!("/v1/channels/{channel}/members/{user}"),
        ))
        .await
    }

    pub async fn remove_member(&self, channel: &str, user: &str) -> Result<(), Error> {
        self.send_empty(self.request(
            Method::DELETE,
            &format!("/v1/channels/{channel}/members/{user}"),
        ))
        .await
    }

    pub async fn history(&self, channel: &str, q: HistoryQuery) -> Result<Page<Message>, Error> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(v) = q.before_seq {
            params.push(("before_seq", v.to_string()));
        }
        if let Some(v) = q.after_seq {
            params.push(("after_seq", v.to_string()));
        }
        if let Some(v) = q.limit {
            params.push(("limit", v.to_string()));
        }
        self.send(
            self.request(Method::GET, &format!("/v1/channels/{channel}/messages"))
                .query(&params),
        )
        .await
    }

    /// Sends a message; the app's backend names the member it sends as.
    pub async fn send_message(
        &self,
        channel: &str,
        client_msg_id: &str,
        text: &str,
        sender_id: Option<&str>,
    ) -> Result<Message, Error> {
        let mut body = serde_json::json!({"client_msg_id": client_msg_id, "text": text});
        if let Some(s) = sender_id {
            body["sender_id"] = s.into();
        }
        self.with_body(
            Method::POST,
            &format!("/v1/channels/{channel}/messages"),
            &body,
        )
        .await
    }

    pub async fn edit_message(
        &self,
        channel: &str,
        message: &str,
        text: &str,
    ) -> Result<Message, Error> {
        self.with_body(
            Method::PATCH,
            &format!("/v1/channels/{channel}/messages/{message}"),
            &serde_json::json!({"text": text}),
        )
        .await
    }

    pub async fn delete_message(&self, channel: &str, message: &str) -> Result<(), Error> {
        self.send_empty(self.request(
            Method::DELETE,
            &format!("/v1/channels/{channel}/messages/{message}"),
        ))
        .await
    }

    /// Adds (`on`) or removes a reaction.
    pub async fn react(
        &self,
        channel: &str,
        message: &str,
        emoji: &str,
        on: bool,
    ) -> Result<(), Error> {
        let method = if on { Method::PUT } else { Method::DELETE };
        let emoji: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
        self.send_empty(self.request(
            method,
            &format!("/v1/channels/{channel}/messages/{message}/reactions/{emoji}"),
        ))
        .await
    }

    /// Marks the channel read up to `seq`; the read position after.
    pub async fn mark_channel_read(&self, channel: &str, seq: i64) -> Result<i64, Error> {
        let v: serde_json::Value = self
            .with_body(
                Method::POST,
                &format!("/v1/channels/{channel}/read"),
                &serde_json::json!({"seq": seq}),
            )
            .await?;
        v["read_seq"]
            .as_i64()
            .ok_or_else(|| Error::Decode("read_seq".into()))
    }

    pub async fn presence(&self, user: &str) -> Result<Presence, Error> {
        self.get(&format!("/v1/users/{user}/presence")).await
    }

    pub async fn ws_endpoint(&self) -> Result<Endpoint, Error> {
        self.get("/v1/ws/endpoint").await
    }

    /// Opens the WebSocket of this server with this client's user token in the
    /// `Authorization` header, and waits for `ready`.
    pub async fn connect_socket(&self) -> Result<(Socket, serde_json::Value), crate::SocketError> {
        let url = format!("{}/v1/ws", self.base_url().replacen("http", "ws", 1));
        let token = self.token().map(str::to_owned);
        Socket::connect(&url, token.as_deref()).await
    }
}
