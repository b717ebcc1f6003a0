//! The accounts service: apps, users, sessions, devices and preferences. It owns the
//! rules (validation, hashing, throttling, isolation); the store only keeps rows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::password::PasswordConfig;
use crate::auth::{
    self, token, LoginThrottle, PasswordHasher, ThrottleConfig, TokenClaims, TokenError,
};
use crate::clock::{rfc3339, Clock};
use crate::config::AuthConfig;
use crate::error::{Error, Result, StoreError};
use crate::ids::{Id, Snowflake};
use crate::model::device::DeviceView;
use crate::model::{
    validate, App, AppCredentials, NewDevice, Platform, Preferences, PublicUser, User, UserPatch,
    UserRecord,
};
use crate::page::{decode_cursor, encode_cursor, Page};
use crate::store::AccountStore;

pub type Ids = Snowflake<Arc<dyn Clock>>;

/// A request authenticated with an app's key and secret.
#[derive(Clone, Debug)]
pub struct AppPrincipal {
    pub app: Arc<App>,
}

/// A request authenticated with a user token.
#[derive(Clone, Debug)]
pub struct UserPrincipal {
    pub app: Arc<App>,
    pub user_id: Id,
}

/// Either kind of caller, for routes both may use.
#[derive(Clone, Debug)]
pub enum Principal {
    App(AppPrincipal),
    User(UserPrincipal),
}

impl Principal {
    pub fn app(&self) -> &Arc<App> {
        match self {
            Self::App(a) => &a.app,
            Self::User(u) => &u.app,
        }
    }
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn tri_state<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A user created by the app's backend. `username` defaults to `u<id>`; `password`
/// is only needed if the user will also log in with Tidings' own login.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: Option<String>,
    pub external_id: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub avatar_url: Option<String>,
}

/// Fields left out stay as they are; `null` clears one.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default, deserialize_with = "tri_state")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "tri_state")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "tri_state")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "tri_state")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    #[serde(default, deserialize_with = "tri_state")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    /// Also accepted as `avatar`.
    #[serde(default, deserialize_with = "tri_state", alias = "avatar")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintTokenRequest {
    /// Lifetime in seconds, at most the server's `auth.token_ttl_secs` (its default).
    pub ttl_secs: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    pub platform: Platform,
    pub token: String,
    /// APNs topic (bundle id) when it differs from the app's provider setting.
    pub topic: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    pub token: String,
    pub expires_at: String,
    pub user: User,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub expires_at: String,
}

/// Finds apps by key or id, keeping hits in memory. Apps are never deleted, so a hit
/// stays valid; a miss always asks the store, so an app created by another process
/// (or node) works at once.
#[derive(Default)]
struct AppCache {
    by_key: RwLock<HashMap<String, Arc<App>>>,
    by_id: RwLock<HashMap<Id, Arc<App>>>,
}

impl AppCache {
    fn remember(&self, app: App) -> Arc<App> {
        let app = Arc::new(app);
        self.by_key.write().insert(app.key.clone(), app.clone());
        self.by_id.write().insert(app.id, app.clone());
        app
    }
}

pub struct Accounts {
    store: Arc<dyn AccountStore>,
    ids: Arc<Ids>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    apps: AppCache,
    config: AuthConfig,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn AccountStore>,
        ids: Arc<Ids>,
        clock: Arc<dyn Clock>,
        config: AuthConfig,
    ) -> Result<Self> {
        let hasher = PasswordHasher::new(&PasswordConfig {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            max_concurrent: config.max_concurrent_hashes,
        })?;
        let throttle = LoginThrottle::new(ThrottleConfig {
            free_failures: config.login_free_failures,
            base_delay_ms: config.login_base_delay_ms,
            max_delay_ms: config.login_max_delay_ms,
            ip_failures: config.login_ip_failures,
            ip_window_ms: config.login_ip_window_ms,
            ..ThrottleConfig::default()
        });
        Ok(Self {
            store,
            ids,
            clock,
            hasher,
            throttle,
            apps: AppCache::default(),
            config,
        })
    }

    pub fn store(&self) -> &Arc<dyn AccountStore> {
        &self.store
    }

    pub fn ids(&self) -> &Arc<Ids> {
        &self.ids
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    // ---- apps -----------------------------------------------------------------------

    pub async fn create_app(&self, name: &str) -> Result<AppCredentials> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "app name must be 1-100 printable characters",
            ));
        }
        let (app, credentials) = auth::generate_app(self.ids.next_id(), name, self.now_ms());
        self.store.insert_app(&app).await?;
        Ok(credentials)
    }

    /// Creates the first app of a new installation; `None` if one exists already.
    pub async fn ensure_first_app(&self) -> Result<Option<AppCredentials>> {
        if self.store.list_apps().await?.is_empty() {
            return self.create_app("default").await.map(Some);
        }
        Ok(None)
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        Ok(self.store.list_apps().await?)
    }

    async fn app_by_key(&self, key: &str) -> Result<Option<Arc<App>>> {
        if let Some(app) = self.apps.by_key.read().get(key) {
            return Ok(Some(app.clone()));
        }
        Ok(self
            .store
            .app_by_key(key)
            .await?
            .map(|a| self.apps.remember(a)))
    }

    async fn app_by_id(&self, id: Id) -> Result<Option<Arc<App>>> {
        if let Some(app) = self.apps.by_id.read().get(&id) {
            return Ok(Some(app.clone()));
        }
        Ok(self
            .store
            .app_by_id(id)
            .await?
            .map(|a| self.apps.remember(a)))
    }

    /// The app named by a public key (`X-App-Key`), for signup and login.
    pub async fn app_for_public_key(&self, key: &str) -> Result<Arc<App>> {
        if key.len() > 128 {
            return Err(Error::Unauthorized("unknown app key".into()));
        }
        self.app_by_key(key)
            .await?
            .ok_or_else(|| Error::Unauthorized("unknown app key".into()))
    }

    pub async fn authenticate_app(&self, key: &str, secret: &str) -> Result<AppPrincipal> {
        let denied = || Error::Unauthorized("invalid app credentials".into());
        if key.len() > 128 || secret.len() > 256 {
            return Err(denied());
        }
        let app = self.app_by_key(key).await?.ok_or_else(denied)?;
        if !auth::verify_secret(&app, secret) {
            return Err(denied());
        }
        Ok(AppPrincipal { app })
    }

    pub async fn authenticate_token(&self, bearer: &str) -> Result<UserPrincipal> {
        let to_error = |e: TokenError| Error::Unauthorized(e.to_string());
        let claims = token::peek(bearer).map_err(to_error)?;
        let app = self
            .app_by_id(claims.app)
            .await?
            .ok_or_else(|| Error::Unauthorized("the token's app does not exist".into()))?;
        let claims =
            token::verify(bearer, &app.signing_key, self.now_ms() / 1000).map_err(to_error)?;
        Ok(UserPrincipal {
            app,
            user_id: claims.sub,
        })
    }

    fn issue_token(&self, app: &App, user: Id, ttl_secs: u64) -> TokenResponse {
        let now = self.now_ms() / 1000;
        let exp = now.saturating_add(ttl_secs.min(i64::MAX as u64) as i64);
        let claims = TokenClaims {
            app: app.id,
            sub: user,
            iat: now,
            exp,
        };
        TokenResponse {
            token: token::sign(&claims, &app.signing_key),
            expires_at: rfc3339(exp.saturating_mul(1000)),
        }
    }

    // ---- sessions -------------------------------------------------------------------

    pub async fn signup(&self, app: &Arc<App>, req: SignupRequest) -> Result<SessionResponse> {
        if !self.config.open_signup {
            return Err(Error::Forbidden(
                "open signup is turned off for this server".into(),
            ));
        }
        let username = validate::username(&req.username)?;
        validate::password(&req.password)?;
        let mut record = self.new_record(app.id, username);
        apply_contact_fields(
            &mut record,
            &CreateUserRequest {
                display_name: req.display_name,
                email: req.email,
                phone: req.phone,
                locale: req.locale,
                timezone: req.timezone,
                ..Default::default()
            },
        )?;
        // Fail fast on a taken name before paying for the hash.
        if self
            .store
            .user_by_username(app.id, &record.username)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict("username".into()).into());
        }
        record.password_hash = Some(self.hasher.hash(&req.password).await?);
        self.store.insert_user(&record).await?;
        let token = self.issue_token(app, record.id, self.config.token_ttl_secs);
        Ok(SessionResponse {
            token: token.token,
            expires_at: token.expires_at,
            user: User::from(&record),
        })
    }

    pub async fn login(
        &self,
        app: &Arc<App>,
        req: LoginRequest,
        ip: Option<IpAddr>,
    ) -> Result<SessionResponse> {
        let denied = || Error::Unauthorized("wrong username or password".into());
        // Names that could never exist are refused the same way as wrong passwords.
        let Ok(username) = validate::username(&req.username) else {
            return Err(denied());
        };
        if req.password.chars().count() > validate::PASSWORD_MAX {
            return Err(denied());
        }
        let now = self.now_ms();
        if let Err(wait_ms) = self.throttle.check(app.id, &username, ip, now) {
            return Err(Error::RateLimited {
                detail: "too many failed logins; try again later".into(),
                retry_after_secs: ((wait_ms + 999) / 1000).max(1) as u64,
            });
        }
        let user = self.store.user_by_username(app.id, &username).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        if !self.hasher.verify(&req.password, hash).await? {
            self.throttle
                .record_failure(app.id, &username, ip, self.now_ms());
            return Err(denied());
        }
        self.throttle.record_success(app.id, &username);
        let user = user.ok_or_else(denied)?;
        let token = self.issue_token(app, user.id, self.config.token_ttl_secs);
        Ok(SessionResponse {
            token: token.token,
            expires_at: token.expires_at,
            user: User::from(&user),
        })
    }

    // ---- users ----------------------------------------------------------------------

    fn new_record(&self, app: Id, username: String) -> UserRecord {
        let now = self.now_ms();
        UserRecord {
            id: self.ids.next_id(),
            app_id: app,
            username,
            display_name: None,
            email: None,
            phone: None,
            locale: None,
            timezone: None,
            avatar_url: None,
            external_id: None,
            password_hash: None,
            created_at_ms: now,
            updated_at_ms: now,
        }
    }

    pub async fn create_user(&self, app: &AppPrincipal, req: CreateUserRequest) -> Result<User> {
        let username = req
            .username
            .as_deref()
            .map(validate::username)
            .transpose()?;
        if let Some(p) = &req.password {
            validate::password(p)?;
        }
        let mut record = self.new_record(app.app.id, String::new());
        record.username = username.unwrap_or_else(|| format!("u{}", record.id));
        apply_contact_fields(&mut record, &req)?;
        record.external_id = req
            .external_id
            .as_deref()
            .map(validate::external_id)
            .transpose()?;
        if let Some(p) = &req.password {
            record.password_hash = Some(self.hasher.hash(p).await?);
        }
        self.store.insert_user(&record).await?;
        Ok(User::from(&record))
    }

    pub async fn mint_token(
        &self,
        app: &AppPrincipal,
        user: Id,
        req: MintTokenRequest,
    ) -> Result<TokenResponse> {
        let ttl = req.ttl_secs.unwrap_or(self.config.token_ttl_secs);
        if ttl == 0 || ttl > self.config.token_ttl_secs {
            return Err(Error::validation(
                "ttl_secs",
                format!("ttl_secs must be 1-{}", self.config.token_ttl_secs),
            ));
        }
        self.require_user(app.app.id, user).await?;
        Ok(self.issue_token(&app.app, user, ttl))
    }

    async fn require_user(&self, app: Id, user: Id) -> Result<UserRecord> {
        self.store
            .user_by_id(app, user)
            .await?
            .ok_or_else(|| Error::not_found("user"))
    }

    /// The caller's own profile. A token whose user is gone is no longer valid.
    pub async fn me(&self, me: &UserPrincipal) -> Result<User> {
        match self.store.user_by_id(me.app.id, me.user_id).await? {
            Some(u) => Ok(User::from(&u)),
            None => Err(Error::Unauthorized(
                "the token's user no longer exists".into(),
            )),
        }
    }

    pub async fn update_me(&self, me: &UserPrincipal, req: UpdateMeRequest) -> Result<User> {
        let patch = validate_patch(req)?;
        let updated = self
            .store
            .update_user(me.app.id, me.user_id, &patch, self.now_ms())
            .await?
            .ok_or_else(|| Error::Unauthorized("the token's user no longer exists".into()))?;
        Ok(User::from(&updated))
    }

    /// A user's full profile (for the app) or public profile (for other users).
    pub async fn user(&self, caller: &Principal, id: Id) -> Result<UserView> {
        let record = self.require_user(caller.app().id, id).await?;
        Ok(match caller {
            Principal::App(_) => UserView::Full(User::from(&record)),
            Principal::User(u) if u.user_id == id => UserView::Full(User::from(&record)),
            Principal::User(_) => UserView::Public(PublicUser::from(&record)),
        })
    }

    pub async fn search(
        &self,
        caller: &Principal,
        query: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<UserView>> {
        let prefix = query.trim().to_ascii_lowercase();
        if prefix.len() > validate::USERNAME_MAX
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(Error::validation(
                "query",
                "query must be the start of a username",
            ));
        }
        let after = cursor.map(|c| decode_cursor("after", c)).transpose()?;
        // One extra row tells whether another page exists.
        let mut rows = self
            .store
            .search_users(caller.app().id, &prefix, after.as_deref(), limit + 1)
            .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|u| encode_cursor(&u.username))
        } else {
            None
        };
        let items = rows
            .iter()
            .map(|r| match caller {
                Principal::App(_) => UserView::Full(User::from(r)),
                Principal::User(_) => UserView::Public(PublicUser::from(r)),
            })
            .collect();
        Ok(Page { items, next_cursor })
    }

    // ---- devices --------------------------------------------------------------------

    pub async fn register_device(
        &self,
        me: &UserPrincipal,
        req: RegisterDeviceRequest,
    ) -> Result<DeviceView> {
        let token = validate::device_token(&req.token)?;
        let topic = req
            .topic
            .as_deref()
            .map(validate::device_topic)
            .transpose()?;
        let device = self
            .store
            .upsert_device(&NewDevice {
                id: self.ids.next_id(),
                app_id: me.app.id,
                user_id: me.user_id,
                platform: req.platform,
                token,
                topic,
                now_ms: self.now_ms(),
            })
            .await?;
        Ok(DeviceView::from(&device))
    }

    pub async fn devices(&self, me: &UserPrincipal) -> Result<Vec<DeviceView>> {
        let devices = self.store.list_devices(me.app.id, me.user_id).await?;
        Ok(devices.iter().map(DeviceView::from).collect())
    }

    pub async fn delete_device(&self, me: &UserPrincipal, id: Id) -> Result<()> {
        // Someone else's device answers exactly like a missing one.
        if self.store.delete_device(me.app.id, me.user_id, id).await? {
            Ok(())
        } else {
            Err(Error::not_found("device"))
        }
    }

    // ---- preferences ----------------------------------------------------------------

    pub async fn preferences(&self, app: Id, user: Id) -> Result<Preferences> {
        self.require_user(app, user).await?;
        Ok(self.store.preferences(app, user).await?.unwrap_or_default())
    }

    pub async fn put_preferences(
        &self,
        app: Id,
        user: Id,
        mut prefs: Preferences,
    ) -> Result<Preferences> {
        prefs.validate()?;
        if let Some(q) = &mut prefs.quiet_hours {
            q.timezone = validate::timezone(&q.timezone)?;
        }
        self.require_user(app, user).await?;
        self.store
            .put_preferences(app, user, &prefs, self.now_ms())
            .await?;
        Ok(prefs)
    }
}

/// A profile as the caller may see it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UserView {
    Full(User),
    Public(PublicUser),
}

fn apply_contact_fields(record: &mut UserRecord, req: &CreateUserRequest) -> Result<()> {
    record.display_name = req
        .display_name
        .as_deref()
        .map(validate::display_name)
        .transpose()?;
    record.email = req.email.as_deref().map(validate::email).transpose()?;
    record.phone = req.phone.as_deref().map(validate::phone).transpose()?;
    record.locale = req.locale.as_deref().map(validate::locale).transpose()?;
    record.timezone = req
        .timezone
        .as_deref()
        .map(validate::timezone)
        .transpose()?;
    record.avatar_url = req
        .avatar_url
        .as_deref()
        .map(|u| validate::http_url("avatar_url", u))
        .transpose()?;
    Ok(())
}

fn validate_patch(req: UpdateMeRequest) -> Result<UserPatch> {
    fn field(
        v: Option<Option<String>>,
        f: impl Fn(&str) -> Result<String>,
    ) -> Result<Option<Option<String>>> {
        v.map(|inner| inner.as_deref().map(&f).transpose())
            .transpose()
    }
    Ok(UserPatch {
        display_name: field(req.display_name, validate::display_name)?,
        email: field(req.email, validate::email)?,
        phone: field(req.phone, validate::phone)?,
        locale: field(req.locale, validate::locale)?,
        timezone: field(req.timezone, validate::timezone)?,
        avatar_url: field(req.avatar_url, |u| validate::http_url("avatar_url", u))?,
    })
}
