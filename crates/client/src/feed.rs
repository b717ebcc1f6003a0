//! The news feed over HTTP.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, Page};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Author {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Post {
    pub id: String,
    pub author: Author,
    pub text: String,
    pub created_at: String,
    pub like_count: i64,
    pub reply_count: i64,
    pub liked_by_me: bool,
    pub reply_to: Option<String>,
}

fn page_params(
    limit: Option<u32>,
    key: &'static str,
    cursor: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(l) = limit {
        params.push(("limit", l.to_string()));
    }
    if let Some(c) = cursor {
        params.push((key, c.to_owned()));
    }
    params
}

impl Client {
    pub async fn follow(&self, user: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::PUT, &format!("/v1/me/following/{user}")))
            .await
    }

    pub async fn unfollow(&self, user: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::DELETE, &format!("/v1/me/following/{user}")))
            .await
    }

    pub async fn followers(
        &self,
        user: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<Author>, Error> {
        self.send(
            self.request(Method::GET, &format!("/v1/users/{user}/followers"))
                .query(&page_params(limit, "after", after)),
        )
        .await
    }

    pub async fn following(
        &self,
        user: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<Author>, Error> {
        self.send(
            self.request(Method::GET, &format!("/v1/users/{user}/following"))
                .query(&page_params(limit, "after", after)),
        )
        .await
    }

    pub async fn mute(&self, user: &str, on: bool) -> Result<(), Error> {
        let method = if on { Method::PUT } else { Method::DELETE };
        self.send_empty(self.request(method, &format!("/v1/me/muted/{user}")))
            .await
    }

    /// Publishes a post, optionally under an `Idempotency-Key`.
    pub async fn post(&self, text: &str, idempotency_key: Option<&str>) -> Result<Post, Error> {
        let mut req = self
            .request(Method::POST, "/v1/posts")
            .json(&serde_json::json!({"text": text}));
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    pub async fn get_post(&self, id: &str) -> Result<Post, Error> {
        self.get(&format!("/v1/posts/{id}")).await
    }

    pub async fn delete_post(&self, id: &str) -> Result<(), Error> {
        self.send_empty(self.request(Method::DELETE, &format!("/v1/posts/{id}")))
            .await
    }

    pub async fn feed(
        &self,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<Post>, Error> {
        self.send(
            self.request(Method::GET, "/v1/me/feed")
                .query(&page_params(limit, "before", before)),
        )
        .await
    }

    pub async fn author_posts(
        &self,
        user: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<Post>, Error> {
        self.send(
            self.request(Method::GET, &format!("/v1/users/{user}/posts"))
                .query(&page_params(limit, "before", before)),
        )
        .await
    }

    /// Likes (`on`) or unlikes; the post with its new count.
    pub async fn like(&self, post: &str, on: bool) -> Result<Post, Error> {
        let method = if on { Method::PUT } else { Method::DELETE };
        self.send(self.request(method, &format!("/v1/posts/{post}/like")))
            .await
    }

    pub async fn reply(&self, post: &str, text: &str) -> Result<Post, Error> {
        self.with_body(
            Method::POST,
            &format!("/v1/posts/{post}/replies"),
            &serde_json::json!({"text": text}),
        )
        .await
    }

    pub async fn replies(
        &self,
        post: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<Post>, Error> {
        self.send(
            self.request(Method::GET, &format!("/v1/posts/{post}/replies"))
                .query(&page_params(limit, "after", after)),
        )
        .await
    }
}
