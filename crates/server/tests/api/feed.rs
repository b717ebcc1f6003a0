//! The news feed through the real server: follows, posts, fan-out, the celebrity
//! merge, mutes, unfollows, deletes, likes, replies and paging past the cache.

use std::collections::HashSet;

use serde_json::json;
use tidings_client::{Client, Post, User};

use crate::helpers::{assert_problem, eventually, spawn_with, Backend, TestApp};
use crate::on_both_backends;

/// Waits until `reader`'s first feed page satisfies `check`.
async fn feed_until(reader: &Client, what: &str, check: impl Fn(&[Post]) -> bool) -> Vec<Post> {
    eventually(what, || {
        let reader = reader.clone();
        let check = &check;
        async move {
            let page = reader.feed(Some(100), None).await.ok()?;
            check(&page.items).then_some(page.items)
        }
    })
    .await
}

fn ids(posts: &[Post]) -> Vec<&str> {
    posts.iter().map(|p| p.id.as_str()).collect()
}

/// Every post of the feed, following `next_cursor` to the end.
async fn whole_feed(reader: &Client, page_size: u32) -> Vec<Post> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = reader
            .feed(Some(page_size), before.as_deref())
            .await
            .unwrap();
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => before = Some(c),
            None => return all,
        }
    }
}

async fn followers_see_posts_newest_first_hydrated(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (bob, b) = app.user("bob").await;
    let (_, c) = app.user("carol").await;
    b.follow(&alice.id).await.unwrap();
    b.follow(&alice.id).await.unwrap();
    c.follow(&alice.id).await.unwrap();
    // Bob reads once so his feed is live and gets fanned out to.
    assert!(b.feed(None, None).await.unwrap().items.is_empty());
    let first = a.post("first", None).await.unwrap();
    let second = a.post("second", None).await.unwrap();
    assert_eq!(first.author.username, "alice");
    let feed = feed_until(&b, "both posts in bob's feed", |p| p.len() == 2).await;
    assert_eq!(ids(&feed), vec![second.id.as_str(), first.id.as_str()]);
    assert_eq!(feed[0].author.id, alice.id);
    assert!(!feed[0].liked_by_me);
    assert_eq!(
        c.feed(None, None).await.unwrap().items.len(),
        2,
        "a first read builds the feed"
    );
    let own = a.feed(None, None).await.unwrap();
    assert_eq!(own.items.len(), 2, "authors see their own posts");
    let followers = a.followers(&alice.id, None, None).await.unwrap();
    assert_eq!(followers.items.len(), 2);
    let following = b.following(&bob.id, None, None).await.unwrap();
    assert_eq!(following.items[0].id, alice.id);
    assert_eq!(
        a.author_posts(&alice.id, None, None)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_problem(
        b.follow(&bob.id).await.unwrap_err(),
        422,
        "validation_failed",
    );
}

async fn posting_is_idempotent_and_only_the_author_deletes(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (_, b) = app.user("bob").await;
    b.follow(&alice.id).await.unwrap();
    b.feed(None, None).await.unwrap();
    let p1 = a.post("once", Some("key-1")).await.unwrap();
    let p2 = a.post("once", Some("key-1")).await.unwrap();
    assert_eq!(p1.id, p2.id);
    assert_eq!(
        a.author_posts(&alice.id, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    feed_until(&b, "the post", |p| p.len() == 1).await;
    assert_problem(b.delete_post(&p1.id).await.unwrap_err(), 403, "forbidden");
    a.delete_post(&p1.id).await.unwrap();
    assert!(
        b.feed(None, None).await.unwrap().items.is_empty(),
        "gone from every feed at once"
    );
    assert!(a.feed(None, None).await.unwrap().items.is_empty());
    assert_problem(b.get_post(&p1.id).await.unwrap_err(), 404, "not_found");
    assert_problem(a.delete_post(&p1.id).await.unwrap_err(), 404, "not_found");
    assert_problem(
        a.post("   ", None).await.unwrap_err(),
        422,
        "validation_failed",
    );
}

async fn mutes_and_unfollows_take_authors_out(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (carol, c) = app.user("carol").await;
    let (_, b) = app.user("bob").await;
    b.follow(&alice.id).await.unwrap();
    b.follow(&carol.id).await.unwrap();
    b.feed(None, None).await.unwrap();
    a.post("from alice", None).await.unwrap();
    c.post("from carol", None).await.unwrap();
    feed_until(&b, "both", |p| p.len() == 2).await;
    b.mute(&carol.id, true).await.unwrap();
    let feed = b.feed(None, None).await.unwrap().items;
    assert!(
        feed.iter().all(|p| p.author.id != carol.id),
        "muted at once"
    );
    c.post("still muted", None).await.unwrap();
    a.post("alice again", None).await.unwrap();
    let feed = feed_until(&b, "alice's second post", |p| p.len() == 2).await;
    assert!(feed.iter().all(|p| p.author.id == alice.id));
    b.mute(&carol.id, false).await.unwrap();
    let feed = b.feed(None, None).await.unwrap().items;
    assert_eq!(feed.len(), 4, "unmuted: carol's posts are back");
    b.unfollow(&alice.id).await.unwrap();
    let feed = b.feed(None, None).await.unwrap().items;
    assert!(
        feed.iter().all(|p| p.author.id == carol.id),
        "unfollowed: alice's posts left"
    );
    // Following again brings her recent posts back.
    b.follow(&alice.id).await.unwrap();
    assert_eq!(b.feed(None, None).await.unwrap().items.len(), 4);
}

async fn likes_and_replies_keep_their_counts(app: TestApp) {
    let (_, a) = app.user("alice").await;
    let post = a.post("count me", None).await.unwrap();
    // Reading the feed puts the post in the content cache with no likes.
    assert_eq!(a.feed(None, None).await.unwrap().items[0].like_count, 0);
    let mut likers = Vec::new();
    for i in 0..8 {
        likers.push(app.user(&format!("liker{i}")).await.1);
    }
    // Read first, so the action cache holds "not liked" that the like must replace.
    assert!(!likers[0].get_post(&post.id).await.unwrap().liked_by_me);
    let tasks: Vec<_> = likers
        .iter()
        .map(|c| {
            let (c, id) = (c.clone(), post.id.clone());
            tokio::spawn(async move {
                c.like(&id, true).await.unwrap();
                c.like(&id, true).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let seen = likers[0].get_post(&post.id).await.unwrap();
    assert_eq!(seen.like_count, 8);
    assert!(seen.liked_by_me);
    assert!(!a.get_post(&post.id).await.unwrap().liked_by_me);
    let after = likers[0].like(&post.id, false).await.unwrap();
    assert_eq!((after.like_count, after.liked_by_me), (7, false));
    let cached = &a.feed(None, None).await.unwrap().items[0];
    assert_eq!(cached.like_count, 7, "a like drops the cached post");
    let r = likers[1].reply(&post.id, "nice").await.unwrap();
    assert_eq!(r.reply_to.as_deref(), Some(post.id.as_str()));
    likers[2].reply(&post.id, "agreed").await.unwrap();
    assert_eq!(a.get_post(&post.id).await.unwrap().reply_count, 2);
    let replies = a.replies(&post.id, None, None).await.unwrap();
    assert_eq!(
        replies
            .items
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>(),
        vec!["nice", "agreed"]
    );
    assert_problem(
        a.reply("1", "to nothing").await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(a.like("1", true).await.unwrap_err(), 404, "not_found");
    assert!(
        a.feed(None, None)
            .await
            .unwrap()
            .items
            .iter()
            .all(|p| p.reply_to.is_none()),
        "replies stay under their post"
    );
}

async fn a_feed_pages_past_its_cache_to_the_first_post(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (_, b) = app.user("bob").await;
    for i in 0..25 {
        a.post(&format!("old {i}"), None).await.unwrap();
    }
    b.follow(&alice.id).await.unwrap();
    let all = whole_feed(&b, 7).await;
    assert_eq!(
        all.len(),
        25,
        "the cache holds 10; the rest comes from the store"
    );
    let unique: HashSet<&str> = ids(&all).into_iter().collect();
    assert_eq!(unique.len(), 25, "no repeats across pages");
    assert!(all
        .windows(2)
        .all(|w| w[0].id.parse::<i64>().unwrap() > w[1].id.parse::<i64>().unwrap()));
}

async fn celebrities_are_merged_at_read_time(app: TestApp) {
    let (star, s) = app.user("star").await;
    let mut fans = Vec::new();
    for i in 0..3 {
        let (_, f) = app.user(&format!("fan{i}")).await;
        f.follow(&star.id).await.unwrap();
        f.feed(None, None).await.unwrap();
        fans.push(f);
    }
    let (friend, fr) = app.user("friend").await;
    fans[0].follow(&friend.id).await.unwrap();
    let p1 = s.post("star post", None).await.unwrap();
    let p2 = fr.post("friend post", None).await.unwrap();
    let feed = feed_until(&fans[0], "both posts", |p| p.len() == 2).await;
    assert_eq!(ids(&feed), vec![p2.id.as_str(), p1.id.as_str()]);
    for f in &fans[1..] {
        assert_eq!(
            ids(&f.feed(None, None).await.unwrap().items),
            vec![p1.id.as_str()]
        );
    }
    fans[1].mute(&star.id, true).await.unwrap();
    assert!(
        fans[1].feed(None, None).await.unwrap().items.is_empty(),
        "muted celebrities stay out"
    );
}

async fn new_posts_arrive_on_followers_sockets(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (_, b) = app.user("bob").await;
    b.follow(&alice.id).await.unwrap();
    b.feed(None, None).await.unwrap();
    let (mut socket, _) = b.connect_socket().await.unwrap();
    let post = a.post("live!", None).await.unwrap();
    let frame = socket.expect("feed_item").await.unwrap();
    assert_eq!(frame["post"]["id"], post.id.as_str());
    assert_eq!(frame["post"]["author"]["username"], "alice");
}

on_both_backends!(
    followers_see_posts_newest_first_hydrated,
    posting_is_idempotent_and_only_the_author_deletes,
    mutes_and_unfollows_take_authors_out,
    likes_and_replies_keep_their_counts,
    new_posts_arrive_on_followers_sockets,
);

/// Small caps and thresholds make the interesting paths cheap to reach.
async fn small(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |c| {
        c.feed.cache_cap = 10;
        c.feed.celebrity_followers = 3;
        c.feed.action_cache_likes = 2;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_past_the_cache_on_sqlite() {
    a_feed_pages_past_its_cache_to_the_first_post(small(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_past_the_cache_on_postgres() {
    let Some(app) = small(Backend::Postgres).await else {
        return;
    };
    a_feed_pages_past_its_cache_to_the_first_post(app).await;
}

/// With `action_cache_likes = 2`, a reader with one like is answered from their
/// cached set of likes, and one with three from the per-post entries; both see
/// exactly what they liked, before and after an unlike.
async fn liked_by_me_for_light_and_heavy_likers(app: TestApp) {
    let (alice, a) = app.user("alice").await;
    let (_, light) = app.user("light").await;
    let (_, heavy) = app.user("heavy").await;
    light.follow(&alice.id).await.unwrap();
    heavy.follow(&alice.id).await.unwrap();
    let mut posts = Vec::new();
    for i in 0..4 {
        posts.push(a.post(&format!("p{i}"), None).await.unwrap().id);
    }
    let liked_of = |page: &tidings_client::Page<tidings_client::Post>| {
        let mut ids: Vec<String> = page
            .items
            .iter()
            .filter(|p| p.liked_by_me)
            .map(|p| p.id.clone())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // Read first, so the caches hold "no likes" that the likes must replace.
    assert!(liked_of(&light.feed(None, None).await.unwrap()).is_empty());
    assert!(liked_of(&heavy.feed(None, None).await.unwrap()).is_empty());
    light.like(&posts[1], true).await.unwrap();
    for p in &posts[..3] {
        heavy.like(p, true).await.unwrap();
    }
    assert_eq!(
        liked_of(&light.feed(None, None).await.unwrap()),
        vec![posts[1].clone()]
    );
    assert_eq!(
        liked_of(&heavy.feed(None, None).await.unwrap()),
        sorted(posts[..3].to_vec())
    );
    light.like(&posts[1], false).await.unwrap();
    heavy.like(&posts[0], false).await.unwrap();
    assert!(liked_of(&light.feed(None, None).await.unwrap()).is_empty());
    assert_eq!(
        liked_of(&heavy.feed(None, None).await.unwrap()),
        sorted(posts[1..3].to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liked_by_me_on_sqlite() {
    liked_by_me_for_light_and_heavy_likers(small(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liked_by_me_on_postgres() {
    let Some(app) = small(Backend::Postgres).await else {
        return;
    };
    liked_by_me_for_light_and_heavy_likers(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celebrity_merge_on_sqlite() {
    celebrities_are_merged_at_read_time(small(Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celebrity_merge_on_postgres() {
    let Some(app) = small(Backend::Postgres).await else {
        return;
    };
    celebrities_are_merged_at_read_time(app).await;
}

/// Losing the feed caches loses nothing: a restarted embedded server (empty memory
/// cache) rebuilds every feed from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_rebuild_after_the_cache_is_lost() {
    let mut app = spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let (alice, a) = app.user("alice").await;
    let (bob, b) = app.user("bob").await;
    b.follow(&alice.id).await.unwrap();
    b.feed(None, None).await.unwrap();
    for i in 0..5 {
        a.post(&format!("p{i}"), None).await.unwrap();
    }
    let before = feed_until(&b, "five posts", |p| p.len() == 5).await;
    app.restart().await;
    let token = app.app.mint_token(&bob.id, None).await.unwrap().token;
    let b = app.client.as_user(&token);
    let after = b.feed(None, None).await.unwrap().items;
    assert_eq!(ids(&after), ids(&before));
    let _: (User, serde_json::Value) = (alice, json!(null));
}
