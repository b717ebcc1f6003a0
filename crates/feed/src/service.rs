//! The feed service: what the HTTP routes call.
//!
//! The read path: the user's feed cache (post ids, newest first), merged with the
//! recent posts of the celebrities they follow (authors with at least
//! `celebrity_followers` followers are never fanned out), continued from the store
//! when the page runs past the cache, filtered for mutes and deletes, then hydrated in
//! batch: posts, authors and "liked by me" each in one multi-get.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tidings_notify::queue::WorkQueue;
use tidings_platform::accounts::Ids;
use tidings_platform::clock::Clock;
use tidings_platform::page::Page;
use tidings_platform::store::AccountStore;
use tidings_platform::{Error, Id, Result};

use crate::cache::FeedCache;
use crate::fanout::audience_key;
use crate::model::{Created, FeedEntry, PostRecord};
use crate::objects::ObjectCache;
use crate::store::FeedStore;
use crate::views::{AuthorView, PostView};

pub const FANOUT_QUEUE: &str = "feed-fanout";
pub const UNFANOUT_QUEUE: &str = "feed-unfanout";
const IDEMPOTENCY_KEY_MAX: usize = 128;
/// Most followees a feed rebuild or a pull past the cache reads from.
const MAX_PULL_AUTHORS: u32 = 5_000;
/// How often a reader's activity is written (activity decides who fan-out skips).
const TOUCH_EVERY_MS: i64 = 10 * 60_000;
/// Cached posts and mutes are deleted when they change; the TTL only bounds the rare
/// race where a read that started before a write stores the old value after it.
const LONG_TTL: Duration = Duration::from_secs(30);
/// Profiles change through the accounts service and celebrity status through other
/// users' follows, neither of which tells this cache: they live briefly.
const SHORT_TTL: Duration = Duration::from_secs(60);

fn post_key(id: Id) -> String {
    format!("post:{id}")
}

fn liked_key(viewer: Id, post: Id) -> String {
    format!("liked:{viewer}:{post}")
}

/// The first byte of every value this service caches. Values are postcard, read on
/// every feed page and several times faster to decode than JSON; the byte is one no
/// JSON text starts with, so a value an older version left in a shared Redis (JSON)
/// or a later format is a miss rather than bytes postcard might misread.
const CACHED_FORMAT: u8 = 0x02;

fn encode_cached<T: serde::Serialize>(value: &T) -> Option<Vec<u8>> {
    postcard::to_extend(value, vec![CACHED_FORMAT]).ok()
}

fn decode_cached<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bytes.split_first() {
        Some((&CACHED_FORMAT, rest)) => postcard::from_bytes(rest).ok(),
        _ => None,
    }
}

fn likes_key(viewer: Id) -> String {
    format!("likes:{viewer}")
}

/// A reader's likes in the action cache.
#[derive(serde::Serialize, serde::Deserialize)]
enum LikeSet {
    /// Every post they liked, sorted.
    All(Vec<Id>),
    /// More than `likes_cached`: looked up per post instead.
    TooMany,
}

#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Post ids kept per feed cache.
    pub cap: usize,
    /// Authors with this many followers are read at fan-in instead of fanned out.
    pub celebrity_followers: i64,
    /// Posts of a newly followed author copied into the follower's feed.
    pub backfill: u32,
    /// Followers who have not read their feed for this long are skipped by fan-out
    /// (their feed is dropped and rebuilt when they come back).
    pub inactive_after_ms: i64,
    /// Followers read and written per fan-out step.
    pub fanout_batch: u32,
    /// Posts a worker fans out at once.
    pub fanout_concurrency: usize,
    /// Readers with at most this many likes are cached as one set.
    pub likes_cached: u32,
    pub text_chars: usize,
}

impl FeedSettings {
    /// The settings a node runs with, from its configuration (zeroes that would stop
    /// the feed from working are raised to one).
    pub fn from_config(config: &tidings_platform::config::Config) -> Self {
        Self {
            cap: config.feed.cache_cap.max(1),
            celebrity_followers: config.feed.celebrity_followers.max(1),
            backfill: config.feed.follow_backfill,
            inactive_after_ms: i64::from(config.feed.inactive_after_days) * 24 * 3600 * 1000,
            fanout_batch: config.feed.fanout_batch.max(1),
            fanout_concurrency: config.feed.fanout_concurrency.max(1),
            likes_cached: config.feed.action_cache_likes,
            text_chars: config.limits.text_chars,
        }
    }
}

/// New posts on the sockets of followers who are connected.
#[async_trait]
pub trait FeedLive: Send + Sync + 'static {
    async fn feed_item(&self, users: Vec<Id>, post: &PostView);
}

/// For servers without sockets.
pub struct NoLive;

#[async_trait]
impl FeedLive for NoLive {
    async fn feed_item(&self, _users: Vec<Id>, _post: &PostView) {}
}

pub struct FeedParts {
    pub store: Arc<dyn FeedStore>,
    pub cache: Arc<dyn FeedCache>,
    pub objects: Arc<dyn ObjectCache>,
    pub accounts: Arc<dyn AccountStore>,
    pub queue: Arc<dyn WorkQueue>,
    pub live: Arc<dyn FeedLive>,
    pub ids: Arc<Ids>,
    pub clock: Arc<dyn Clock>,
    pub settings: FeedSettings,
}

/// Whose feed is being read, and what shapes it.
struct Reader<'a> {
    app: Id,
    user: Id,
    muted: &'a HashSet<Id>,
    celebrities: &'a HashSet<Id>,
}

pub struct Feed {
    pub(crate) store: Arc<dyn FeedStore>,
    pub(crate) cache: Arc<dyn FeedCache>,
    pub(crate) objects: Arc<dyn ObjectCache>,
    pub(crate) accounts: Arc<dyn AccountStore>,
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) live: Arc<dyn FeedLive>,
    ids: Arc<Ids>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: FeedSettings,
    touched: Mutex<HashMap<Id, i64>>,
}

fn entry(p: &PostRecord) -> FeedEntry {
    FeedEntry {
        post_id: p.id,
        author_id: p.author_id,
    }
}

impl Feed {
    pub fn new(p: FeedParts) -> Self {
        Self {
            store: p.store,
            cache: p.cache,
            objects: p.objects,
            accounts: p.accounts,
            queue: p.queue,
            live: p.live,
            ids: p.ids,
            clock: p.clock,
            settings: p.settings,
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Drops cached values that a write changed. A cache that cannot be reached only
    /// makes reads slower later, so failures are logged, not returned.
    async fn forget(&self, keys: Vec<String>) {
        if let Err(e) = self.objects.delete(&keys).await {
            tracing::warn!(error = %e, "cannot drop cached feed objects");
        }
    }

    /// Values of `keys` from the object cache, the misses from `load` (stored back for
    /// `ttl`). A cache failure falls back to `load` for everything. Values are
    /// postcard behind a format byte (see [`encode_cached`]).
    async fn cached<T, F, Fut>(
        &self,
        keys: Vec<String>,
        ttl: Duration,
        load: F,
    ) -> Result<Vec<Option<T>>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce(Vec<usize>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(usize, T)>>>,
    {
        let hits = self.objects.get_many(&keys).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "feed object cache unavailable");
            vec![None; keys.len()]
        });
        let mut out: Vec<Option<T>> = hits
            .iter()
            .map(|h| h.as_deref().and_then(decode_cached))
            .collect();
        let misses: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        if misses.is_empty() {
            return Ok(out);
        }
        let loaded = load(misses).await?;
        let mut fill = Vec::with_capacity(loaded.len());
        for (i, v) in loaded {
            if let Some(bytes) = encode_cached(&v) {
                fill.push((keys[i].clone(), bytes));
            }
            out[i] = Some(v);
        }
        if let Err(e) = self.objects.put_many(&fill, ttl).await {
            tracing::warn!(error = %e, "cannot fill the feed object cache");
        }
        Ok(out)
    }

    /// Posts by id through the content cache; missing ids are left out.
    async fn load_posts(&self, ids: &[Id]) -> Result<HashMap<Id, PostRecord>> {
        let keys = ids.iter().map(|id| post_key(*id)).collect();
        let got = self
            .cached(keys, LONG_TTL, |misses| async move {
                let want: Vec<Id> = misses.iter().map(|i| ids[*i]).collect();
                let found = self.store.posts_by_ids(&want).await?;
                Ok(misses
                    .iter()
                    .filter_map(|i| {
                        found
                            .iter()
                            .find(|p| p.id == ids[*i])
                            .map(|p| (*i, p.clone()))
                    })
                    .collect())
            })
            .await?;
        Ok(got.into_iter().flatten().map(|p| (p.id, p)).collect())
    }

    /// Authors through the user cache.
    async fn load_authors(&self, app: Id, ids: &[Id]) -> Result<HashMap<Id, AuthorView>> {
        let keys = ids.iter().map(|id| format!("user:{id}")).collect();
        let got = self
            .cached(keys, SHORT_TTL, |misses| async move {
                let want: Vec<Id> = misses.iter().map(|i| ids[*i]).collect();
                let found = self.accounts.users_by_ids(app, &want).await?;
                Ok(misses
                    .iter()
                    .filter_map(|i| {
                        found
                            .iter()
                            .find(|u| u.id == ids[*i])
                            .map(|u| (*i, AuthorView::from(u)))
                    })
                    .collect())
            })
            .await?;
        Ok(got.into_iter().flatten().map(|a| (a.id, a)).collect())
    }

    /// Which of `posts` the viewer has liked, through the action cache: for most
    /// readers one entry holding every post they liked (`likes:<viewer>`), so a page
    /// costs one look-up; for readers with more than `likes_cached` likes, one entry
    /// per post and reader (`liked:<viewer>:<post>`). A like or unlike deletes both.
    async fn liked_by(&self, viewer: Id, posts: &[Id]) -> Result<HashSet<Id>> {
        let set = self
            .cached(vec![likes_key(viewer)], LONG_TTL, |_| async move {
                let most = self.settings.likes_cached;
                let mut all = self.store.likes_of(viewer, most.saturating_add(1)).await?;
                let set = if all.len() > most as usize {
                    LikeSet::TooMany
                } else {
                    all.sort_unstable();
                    LikeSet::All(all)
                };
                Ok(vec![(0, set)])
            })
            .await?
            .pop()
            .flatten();
        if let Some(LikeSet::All(all)) = set {
            return Ok(posts
                .iter()
                .filter(|p| all.binary_search(p).is_ok())
                .copied()
                .collect());
        }
        let keys = posts.iter().map(|p| liked_key(viewer, *p)).collect();
        let got = self
            .cached(keys, LONG_TTL, |misses| async move {
                let want: Vec<Id> = misses.iter().map(|i| posts[*i]).collect();
                let liked: HashSet<Id> =
                    self.store.liked(viewer, &want).await?.into_iter().collect();
                Ok(misses
                    .into_iter()
                    .map(|i| (i, liked.contains(&posts[i])))
                    .collect())
            })
            .await?;
        Ok(posts
            .iter()
            .zip(got)
            .filter(|(_, l)| *l == Some(true))
            .map(|(p, _)| *p)
            .collect())
    }

    /// Whom the user muted, through the social graph cache.
    async fn muted_of(&self, app: Id, user: Id) -> Result<HashSet<Id>> {
        let got = self
            .cached(vec![format!("muted:{user}")], LONG_TTL, |_| async move {
                Ok(vec![(0, self.store.muted(app, user).await?)])
            })
            .await?;
        Ok(got.into_iter().flatten().flatten().collect())
    }

    /// The celebrities the user follows, through the social graph cache.
    async fn celebrities_of(&self, app: Id, user: Id) -> Result<Vec<Id>> {
        let min = self.settings.celebrity_followers;
        let got = self
            .cached(vec![format!("celebs:{user}")], SHORT_TTL, |_| async move {
                Ok(vec![(
                    0,
                    self.store
                        .following_with_min_followers(app, user, min)
                        .await?,
                )])
            })
            .await?;
        Ok(got.into_iter().flatten().flatten().collect())
    }

    fn check_text(&self, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Err(Error::validation("text", "text must not be empty"));
        }
        if text.chars().count() > self.settings.text_chars {
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

    async fn check_user(&self, app: Id, user: Id) -> Result<()> {
        if self.accounts.user_by_id(app, user).await?.is_none() {
            return Err(Error::not_found("user"));
        }
        Ok(())
    }

    /// Stores a post and queues its fan-out; the author sees it in their own feed at
    /// once. The second value is false when the `Idempotency-Key` was used before.
    pub async fn create_post(
        &self,
        app: Id,
        author: Id,
        text: &str,
        idempotency_key: Option<&str>,
        reply_to: Option<Id>,
    ) -> Result<(PostView, bool)> {
        self.check_text(text)?;
        if let Some(k) = idempotency_key {
            if k.is_empty() || k.len() > IDEMPOTENCY_KEY_MAX || k.chars().any(char::is_control) {
                return Err(Error::validation(
                    "Idempotency-Key",
                    format!("an idempotency key is 1-{IDEMPOTENCY_KEY_MAX} printable bytes"),
                ));
            }
        }
        let record = PostRecord {
            id: self.ids.next_id(),
            app_id: app,
            author_id: author,
            text: text.to_owned(),
            reply_to,
            created_at_ms: self.clock.now_ms(),
            deleted: false,
            like_count: 0,
            reply_count: 0,
            idempotency_key: idempotency_key.map(str::to_owned),
            fanned_out: false,
        };
        let (post, created) = match self.store.create_post(&record).await? {
            Created::New(p) => {
                if let Some(parent) = p.reply_to {
                    self.forget(vec![post_key(parent)]).await;
                }
                (p, true)
            }
            Created::Duplicate(p) => (p, false),
            Created::NoParent => return Err(Error::not_found("post")),
        };
        if created && post.reply_to.is_none() {
            self.cache
                .push(&[(author, entry(&post))], self.settings.cap)
                .await?;
            // The row is the record: a failed enqueue is retried by the sweeper.
            if let Err(e) = self
                .queue
                .enqueue(FANOUT_QUEUE, &[post.id.0], Duration::ZERO)
                .await
            {
                tracing::warn!(error = %e, post = %post.id, "fan-out not queued; the sweeper will");
            }
        }
        let view = self.hydrate(author, vec![post]).await?.pop();
        let view = view.ok_or_else(|| Error::Internal("a new post did not hydrate".into()))?;
        Ok((view, created))
    }

    /// A live post of the app.
    pub async fn post(&self, app: Id, viewer: Id, id: Id) -> Result<PostView> {
        let post = self
            .store
            .post(app, id)
            .await?
            .filter(|p| !p.deleted)
            .ok_or_else(|| Error::not_found("post"))?;
        self.hydrate(viewer, vec![post])
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("post"))
    }

    /// The author deletes: the post leaves every feed (hidden at once at read time,
    /// removed from caches by a queued job).
    pub async fn delete_post(&self, app: Id, actor: Id, id: Id) -> Result<()> {
        let post = self
            .store
            .post(app, id)
            .await?
            .filter(|p| !p.deleted)
            .ok_or_else(|| Error::not_found("post"))?;
        if post.author_id != actor {
            return Err(Error::Forbidden("only the author deletes a post".into()));
        }
        self.store.delete_post(app, id).await?;
        let mut stale = vec![post_key(id)];
        stale.extend(post.reply_to.map(post_key));
        self.forget(stale).await;
        self.cache.remove_posts(actor, &[id]).await?;
        if post.reply_to.is_none() {
            if let Err(e) = self
                .queue
                .enqueue(UNFANOUT_QUEUE, &[id.0], Duration::ZERO)
                .await
            {
                // Caches keep a dead id until rebuilt; reads filter it out meanwhile.
                tracing::warn!(error = %e, post = %id, "removal from feeds not queued");
            }
        }
        Ok(())
    }

    pub async fn author_posts(
        &self,
        app: Id,
        viewer: Id,
        author: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Page<PostView>> {
        self.check_user(app, author).await?;
        let posts = self
            .store
            .posts_by_authors(app, &[author], before, limit + 1)
            .await?;
        self.page_of(viewer, posts, limit).await
    }

    async fn page_of(
        &self,
        viewer: Id,
        mut posts: Vec<PostRecord>,
        limit: u32,
    ) -> Result<Page<PostView>> {
        let more = posts.len() > limit as usize;
        posts.truncate(limit as usize);
        let next_cursor = if more {
            posts.last().map(|p| p.id.to_string())
        } else {
            None
        };
        Ok(Page {
            items: self.hydrate(viewer, posts).await?,
            next_cursor,
        })
    }

    pub async fn reply(&self, app: Id, author: Id, parent: Id, text: &str) -> Result<PostView> {
        Ok(self
            .create_post(app, author, text, None, Some(parent))
            .await?
            .0)
    }

    pub async fn replies(
        &self,
        app: Id,
        viewer: Id,
        parent: Id,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Page<PostView>> {
        self.store
            .post(app, parent)
            .await?
            .filter(|p| !p.deleted)
            .ok_or_else(|| Error::not_found("post"))?;
        let mut posts = self.store.replies(parent, after, limit + 1).await?;
        let more = posts.len() > limit as usize;
        posts.truncate(limit as usize);
        let next_cursor = more
            .then(|| posts.last().map(|p| p.id.to_string()))
            .flatten();
        Ok(Page {
            items: self.hydrate(viewer, posts).await?,
            next_cursor,
        })
    }

    pub async fn follow(&self, app: Id, follower: Id, followee: Id) -> Result<()> {
        if follower == followee {
            return Err(Error::validation("user_id", "you cannot follow yourself"));
        }
        self.check_user(app, followee).await?;
        let now = self.clock.now_ms();
        if !self.store.follow(app, follower, followee, now).await? {
            return Ok(());
        }
        self.forget(vec![format!("celebs:{follower}"), audience_key(followee)])
            .await;
        let (followers, _) = self.store.follow_counts(app, followee).await?;
        if followers >= self.settings.celebrity_followers {
            // Merged in at read time; nothing to copy.
            return Ok(());
        }
        let muted = self.store.muted(app, follower).await?;
        if muted.contains(&followee) {
            return Ok(());
        }
        let recent = self
            .store
            .posts_by_authors(app, &[followee], None, self.settings.backfill)
            .await?;
        let entries: Vec<(Id, FeedEntry)> = recent.iter().map(|p| (follower, entry(p))).collect();
        self.cache.push(&entries, self.settings.cap).await?;
        Ok(())
    }

    pub async fn unfollow(&self, app: Id, follower: Id, followee: Id) -> Result<()> {
        self.store.unfollow(app, follower, followee).await?;
        self.forget(vec![format!("celebs:{follower}"), audience_key(followee)])
            .await;
        self.cache.remove_author(follower, followee).await?;
        Ok(())
    }

    pub async fn mute(&self, app: Id, user: Id, muted: Id, on: bool) -> Result<()> {
        if user == muted {
            return Err(Error::validation("user_id", "you cannot mute yourself"));
        }
        self.check_user(app, muted).await?;
        let now = self.clock.now_ms();
        if self.store.set_mute(app, user, muted, on, now).await? {
            self.forget(vec![format!("muted:{user}"), audience_key(muted)])
                .await;
            if on {
                self.cache.remove_author(user, muted).await?;
            } else {
                // Their posts come back: rebuild on the next read.
                self.cache.drop_feed(user).await?;
            }
        }
        Ok(())
    }

    /// Likes or unlikes; the post as the liker now sees it.
    pub async fn like(&self, app: Id, user: Id, post: Id, on: bool) -> Result<PostView> {
        self.store
            .post(app, post)
            .await?
            .filter(|p| !p.deleted)
            .ok_or_else(|| Error::not_found("post"))?;
        if self
            .store
            .set_like(post, user, on, self.clock.now_ms())
            .await?
        {
            self.forget(vec![post_key(post), likes_key(user), liked_key(user, post)])
                .await;
        }
        self.post(app, user, post).await
    }

    /// Followers or following, as author views, by user id.
    pub async fn graph(
        &self,
        app: Id,
        user: Id,
        followers: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Page<AuthorView>> {
        self.check_user(app, user).await?;
        let mut ids: Vec<Id> = if followers {
            self.store
                .followers(app, user, after, limit + 1)
                .await?
                .into_iter()
                .map(|f| f.user_id)
                .collect()
        } else {
            self.store.following(app, user, after, limit + 1).await?
        };
        let more = ids.len() > limit as usize;
        ids.truncate(limit as usize);
        let users = self.accounts.users_by_ids(app, &ids).await?;
        let items: Vec<AuthorView> = ids
            .iter()
            .filter_map(|id| users.iter().find(|u| u.id == *id).map(AuthorView::from))
            .collect();
        let next_cursor = more.then(|| ids.last().map(|i| i.to_string())).flatten();
        Ok(Page { items, next_cursor })
    }

    /// Records that the user reads their feed, at most every few minutes.
    async fn touch(&self, app: Id, user: Id, now: i64) {
        {
            let mut touched = self.touched.lock();
            if touched.get(&user).is_some_and(|t| now - t < TOUCH_EVERY_MS) {
                return;
            }
            if touched.len() > 100_000 {
                touched.clear();
            }
            touched.insert(user, now);
        }
        if let Err(e) = self.store.touch(app, user, now).await {
            tracing::warn!(error = %e, "cannot record feed activity");
        }
    }

    /// Authors whose posts make up the user's feed: whom they follow, and themselves,
    /// minus whom they muted.
    async fn feed_authors(&self, app: Id, user: Id, muted: &HashSet<Id>) -> Result<Vec<Id>> {
        let mut authors = self
            .store
            .following(app, user, None, MAX_PULL_AUTHORS)
            .await?;
        authors.push(user);
        authors.retain(|a| !muted.contains(a));
        Ok(authors)
    }

    /// Rebuilds a feed cache from the store: the newest posts of the non-celebrity
    /// authors the user follows.
    async fn rebuild(
        &self,
        app: Id,
        user: Id,
        muted: &HashSet<Id>,
        celebrities: &HashSet<Id>,
    ) -> Result<()> {
        let mut authors = self.feed_authors(app, user, muted).await?;
        authors.retain(|a| !celebrities.contains(a) || *a == user);
        // The user may be back from a time away, which the authors' cached audiences
        // (with the user's old activity) would keep skipping until they expire.
        self.forget(authors.iter().map(|a| audience_key(*a)).collect())
            .await;
        let posts = self
            .store
            .posts_by_authors(app, &authors, None, self.settings.cap as u32)
            .await?;
        let entries: Vec<FeedEntry> = posts.iter().map(entry).collect();
        self.cache
            .replace(user, &entries, self.settings.cap)
            .await?;
        Ok(())
    }

    /// The home feed, newest first, `limit` posts older than `before`.
    pub async fn home(
        &self,
        app: Id,
        user: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Page<PostView>> {
        let now = self.clock.now_ms();
        self.touch(app, user, now).await;
        let want = limit as usize + 1;
        let muted = self.muted_of(app, user).await?;
        let celebrities: HashSet<Id> = self
            .celebrities_of(app, user)
            .await?
            .into_iter()
            .filter(|c| !muted.contains(c))
            .collect();
        let who = Reader {
            app,
            user,
            muted: &muted,
            celebrities: &celebrities,
        };
        let mut posts = Vec::new();
        let mut from = before;
        // Deleted and muted posts drop out after the ids are chosen, so a page may
        // need more than one round to fill.
        loop {
            let (batch, last, exhausted) = self.candidates(&who, from, want).await?;
            posts.extend(batch);
            if posts.len() >= want || exhausted {
                break;
            }
            from = last;
        }
        let more = posts.len() > limit as usize;
        posts.truncate(limit as usize);
        let next_cursor = if more {
            posts.last().map(|p| p.id.to_string())
        } else {
            None
        };
        Ok(Page {
            items: self.hydrate(user, posts).await?,
            next_cursor,
        })
    }

    /// Up to `want` live posts older than `from`: the feed cache merged with the
    /// celebrities' recent posts, continued from the store when the cache runs out.
    /// Also the oldest id considered, and whether nothing older exists.
    async fn candidates(
        &self,
        who: &Reader<'_>,
        from: Option<Id>,
        want: usize,
    ) -> Result<(Vec<PostRecord>, Option<Id>, bool)> {
        let cached = match self.cache.page(who.user, from, want).await? {
            Some(entries) => entries,
            None => {
                self.rebuild(who.app, who.user, who.muted, who.celebrities)
                    .await?;
                self.cache
                    .page(who.user, from, want)
                    .await?
                    .unwrap_or_default()
            }
        };
        let mut ids: Vec<Id> = cached
            .iter()
            .filter(|e| !who.muted.contains(&e.author_id))
            .map(|e| e.post_id)
            .collect();
        let mut loaded: HashMap<Id, PostRecord> = HashMap::new();
        if !who.celebrities.is_empty() {
            let list: Vec<Id> = who.celebrities.iter().copied().collect();
            for p in self
                .store
                .posts_by_authors(who.app, &list, from, want as u32)
                .await?
            {
                ids.push(p.id);
                loaded.insert(p.id, p);
            }
        }
        ids.sort_unstable_by_key(|id| std::cmp::Reverse(*id));
        ids.dedup();
        ids.truncate(want);
        let mut exhausted = false;
        if ids.len() < want {
            // The cache ran out before the page did: continue from the store, so a
            // feed never ends while older posts exist.
            let older_than = ids.last().copied().or(from);
            let authors = self.feed_authors(who.app, who.user, who.muted).await?;
            let more = self
                .store
                .posts_by_authors(who.app, &authors, older_than, (want - ids.len()) as u32)
                .await?;
            exhausted = ids.len() + more.len() < want;
            for p in more {
                if !loaded.contains_key(&p.id) && !ids.contains(&p.id) {
                    ids.push(p.id);
                    loaded.insert(p.id, p);
                }
            }
        }
        let missing: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|id| !loaded.contains_key(id))
            .collect();
        loaded.extend(self.load_posts(&missing).await?);
        let last = ids.last().copied();
        let posts = ids
            .iter()
            .filter_map(|id| loaded.remove(id))
            .filter(|p| !p.deleted && p.app_id == who.app && !who.muted.contains(&p.author_id))
            .collect();
        Ok((posts, last, exhausted || last.is_none()))
    }

    /// Posts → views: authors and "liked by me" in one multi-get each.
    pub async fn hydrate(&self, viewer: Id, posts: Vec<PostRecord>) -> Result<Vec<PostView>> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let app = posts[0].app_id;
        let mut author_ids: Vec<Id> = posts.iter().map(|p| p.author_id).collect();
        author_ids.sort_unstable();
        author_ids.dedup();
        let authors = self.load_authors(app, &author_ids).await?;
        let ids: Vec<Id> = posts.iter().map(|p| p.id).collect();
        let liked = self.liked_by(viewer, &ids).await?;
        Ok(posts
            .iter()
            .filter_map(|p| {
                let author = authors.get(&p.author_id)?.clone();
                Some(PostView::new(p, author, liked.contains(&p.id)))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_values_round_trip_and_json_from_older_versions_is_a_miss() {
        let post = PostRecord {
            id: Id(7_395_739_573_957_395),
            app_id: Id(1),
            author_id: Id(2),
            text: "hello".into(),
            reply_to: None,
            created_at_ms: 1_795_599_285_123,
            deleted: false,
            like_count: 3,
            reply_count: 0,
            idempotency_key: None,
            fanned_out: true,
        };
        let bytes = encode_cached(&post).unwrap();
        assert_eq!(decode_cached::<PostRecord>(&bytes), Some(post.clone()));
        let json = serde_json::to_vec(&post).unwrap();
        assert_eq!(decode_cached::<PostRecord>(&json), None);
        assert_eq!(decode_cached::<bool>(b"true"), None);
        assert_eq!(decode_cached::<bool>(&[]), None);
        let likes = encode_cached(&LikeSet::All(vec![Id(1), Id(5)])).unwrap();
        assert!(matches!(
            decode_cached::<LikeSet>(&likes),
            Some(LikeSet::All(v)) if v == vec![Id(1), Id(5)]
        ));
    }
}
