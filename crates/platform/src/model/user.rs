use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::ids::Id;

/// A user as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Id,
    pub app_id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub avatar_url: Option<String>,
    pub external_id: Option<String>,
    /// PHC string of the argon2id hash; `None` for users an app created without one.
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The full profile, seen by the user and by the app.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub avatar_url: Option<String>,
    pub external_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What other users may see of a user: no contact details.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PublicUser {
    pub id: Id,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub created_at: String,
}

impl From<&UserRecord> for User {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            email: r.email.clone(),
            phone: r.phone.clone(),
            locale: r.locale.clone(),
            timezone: r.timezone.clone(),
            avatar_url: r.avatar_url.clone(),
            external_id: r.external_id.clone(),
            created_at: rfc3339(r.created_at_ms),
            updated_at: rfc3339(r.updated_at_ms),
        }
    }
}

impl From<&UserRecord> for PublicUser {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            avatar_url: r.avatar_url.clone(),
            created_at: rfc3339(r.created_at_ms),
        }
    }
}

/// A validated change to a profile. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

impl UserPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, user: &mut UserRecord) {
        let fields = [
            (&self.display_name, &mut user.display_name),
            (&self.email, &mut user.email),
            (&self.phone, &mut user.phone),
            (&self.locale, &mut user.locale),
            (&self.timezone, &mut user.timezone),
            (&self.avatar_url, &mut user.avatar_url),
        ];
        for (change, field) in fields {
            if let Some(value) = change {
                field.clone_from(value);
            }
        }
    }
}
