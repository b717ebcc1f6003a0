//! What clients see of posts and their authors.

use serde::{Deserialize, Serialize};
use tidings_platform::clock::rfc3339;
use tidings_platform::model::UserRecord;
use tidings_platform::Id;
use utoipa::ToSchema;

use crate::model::PostRecord;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuthorView {
    pub id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

impl From<&UserRecord> for AuthorView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_url: u.avatar_url.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PostView {
    pub id: Id,
    pub author: AuthorView,
    pub text: String,
    pub created_at: String,
    pub like_count: i64,
    pub reply_count: i64,
    pub liked_by_me: bool,
    /// For a reply: the post it answers.
    pub reply_to: Option<Id>,
}

impl PostView {
    pub fn new(p: &PostRecord, author: AuthorView, liked_by_me: bool) -> Self {
        Self {
            id: p.id,
            author,
            text: p.text.clone(),
            created_at: rfc3339(p.created_at_ms),
            like_count: p.like_count,
            reply_count: p.reply_count,
            liked_by_me,
            reply_to: p.reply_to,
        }
    }
}
