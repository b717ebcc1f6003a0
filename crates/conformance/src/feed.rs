//! Conformance tests of [`FeedStore`] and [`FeedCache`]: the rules the feed service
//! relies on, checked against every implementation.

use std::sync::Arc;

use tidings_feed::cache::FeedCache;
use tidings_feed::model::{Created, FeedEntry, PostRecord};
use tidings_feed::store::FeedStore;
use tidings_platform::Id;

type Store = Arc<dyn FeedStore>;
type Cache = Arc<dyn FeedCache>;

static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(9_000_000);

fn id() -> Id {
    Id(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

const T0: i64 = 1_800_000_000_000;

fn post(app: Id, author: Id, text: &str) -> PostRecord {
    PostRecord {
        id: id(),
        app_id: app,
        author_id: author,
        text: text.into(),
        reply_to: None,
        created_at_ms: T0,
        deleted: false,
        like_count: 0,
        reply_count: 0,
        idempotency_key: None,
        fanned_out: false,
    }
}

async fn create(store: &Store, p: &PostRecord) -> PostRecord {
    match store.create_post(p).await.expect("create") {
        Created::New(p) => p,
        other => panic!("expected a new post, got {other:?}"),
    }
}

pub async fn posts_round_trip_with_idempotency(store: Store) {
    let (app, other_app, alice) = (id(), id(), id());
    let mut p = post(app, alice, "hello");
    p.idempotency_key = Some("k-1".into());
    let made = create(&store, &p).await;
    assert_eq!(made, p);
    assert_eq!(store.post(app, p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(
        store.post(other_app, p.id).await.unwrap(),
        None,
        "apps are isolated"
    );
    let mut again = post(app, alice, "hello again");
    again.idempotency_key = Some("k-1".into());
    assert_eq!(
        store.create_post(&again).await.unwrap(),
        Created::Duplicate(p.clone())
    );
    assert_eq!(
        store.post(app, again.id).await.unwrap(),
        None,
        "nothing stored twice"
    );
    // Another author may use the same key.
    let mut bobs = post(app, id(), "bob");
    bobs.idempotency_key = Some("k-1".into());
    create(&store, &bobs).await;
    let found = store.posts_by_ids(&[p.id, bobs.id, id()]).await.unwrap();
    assert_eq!(found.len(), 2);
}

pub async fn replies_count_on_their_parent(store: Store) {
    let (app, alice, bob) = (id(), id(), id());
    let parent = create(&store, &post(app, alice, "parent")).await;
    let mut r1 = post(app, bob, "first reply");
    r1.reply_to = Some(parent.id);
    let mut r2 = post(app, alice, "second reply");
    r2.reply_to = Some(parent.id);
    create(&store, &r1).await;
    create(&store, &r2).await;
    assert_eq!(
        store
            .post(app, parent.id)
            .await
            .unwrap()
            .unwrap()
            .reply_count,
        2
    );
    let replies = store.replies(parent.id, None, 10).await.unwrap();
    assert_eq!(
        replies.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1.id, r2.id]
    );
    assert_eq!(
        store
            .replies(parent.id, Some(r1.id), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut orphan = post(app, bob, "to nothing");
    orphan.reply_to = Some(id());
    assert_eq!(store.create_post(&orphan).await.unwrap(), Created::NoParent);
    store.delete_post(app, r2.id).await.unwrap();
    assert_eq!(
        store
            .post(app, parent.id)
            .await
            .unwrap()
            .unwrap()
            .reply_count,
        1
    );
    assert_eq!(store.replies(parent.id, None, 10).await.unwrap().len(), 1);
    // Replies are not top-level posts.
    let top = store
        .posts_by_authors(app, &[alice, bob], None, 10)
        .await
        .unwrap();
    assert_eq!(
        top.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![parent.id]
    );
}

pub async fn deletes_hide_posts_and_fan_out_is_tracked(store: Store) {
    let (app, alice) = (id(), id());
    let a = create(&store, &post(app, alice, "a")).await;
    let b = create(&store, &post(app, alice, "b")).await;
    let mut due = store.unfanned_posts(T0 + 1, 100).await.unwrap();
    due.sort();
    assert!(due.contains(&a.id) && due.contains(&b.id));
    store.mark_fanned_out(a.id).await.unwrap();
    let due = store.unfanned_posts(T0 + 1, 100).await.unwrap();
    assert!(!due.contains(&a.id) && due.contains(&b.id));
    assert!(
        store
            .unfanned_posts(T0, 100)
            .await
            .unwrap()
            .iter()
            .all(|p| *p != b.id),
        "only older ones"
    );
    let gone = store.delete_post(app, b.id).await.unwrap().unwrap();
    assert!(gone.deleted);
    assert_eq!(gone.text, "");
    assert!(!store
        .unfanned_posts(T0 + 1, 100)
        .await
        .unwrap()
        .contains(&b.id));
    assert_eq!(
        store.delete_post(id(), a.id).await.unwrap(),
        None,
        "another app's post"
    );
    let listed = store
        .posts_by_authors(app, &[alice], None, 10)
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), vec![a.id]);
}

pub async fn author_posts_page_newest_first(store: Store) {
    let (app, alice, bob, carol) = (id(), id(), id(), id());
    let mut made = Vec::new();
    for i in 0..6 {
        let author = [alice, bob, carol][i % 3];
        made.push(create(&store, &post(app, author, &format!("p{i}"))).await);
    }
    let page = store
        .posts_by_authors(app, &[alice, bob], None, 3)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![made[4].id, made[3].id, made[1].id]
    );
    let rest = store
        .posts_by_authors(app, &[alice, bob], Some(made[1].id), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![made[0].id]
    );
    assert!(store
        .posts_by_authors(app, &[], None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .posts_by_authors(id(), &[alice], None, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn the_follow_graph_counts_and_pages(store: Store) {
    let app = id();
    let star = id();
    let fans: Vec<Id> = (0..5).map(|_| id()).collect();
    for f in &fans {
        assert!(store.follow(app, *f, star, T0).await.unwrap());
    }
    assert!(
        !store.follow(app, fans[0], star, T0).await.unwrap(),
        "idempotent"
    );
    assert_eq!(store.follow_counts(app, star).await.unwrap(), (5, 0));
    assert_eq!(store.follow_counts(app, fans[0]).await.unwrap(), (0, 1));
    let first = store.followers(app, star, None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|f| f.user_id).collect::<Vec<_>>(),
        fans[..3].to_vec()
    );
    let rest = store
        .followers(app, star, Some(first[2].user_id), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|f| f.user_id).collect::<Vec<_>>(),
        fans[3..].to_vec()
    );
    assert_eq!(
        store.following(app, fans[1], None, 10).await.unwrap(),
        vec![star]
    );
    let small = id();
    store.follow(app, fans[1], small, T0).await.unwrap();
    assert_eq!(
        store
            .following_with_min_followers(app, fans[1], 3)
            .await
            .unwrap(),
        vec![star]
    );
    assert_eq!(
        store
            .following_with_min_followers(app, fans[1], 1)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store.unfollow(app, fans[0], star).await.unwrap());
    assert!(!store.unfollow(app, fans[0], star).await.unwrap());
    assert_eq!(store.follow_counts(app, star).await.unwrap(), (4, 0));
    assert!(
        store
            .followers(id(), star, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "apps are isolated"
    );
    // Last activity rides along for fan-out.
    store.touch(app, fans[2], T0 + 500).await.unwrap();
    let with_activity = store.followers(app, star, None, 10).await.unwrap();
    let f2 = with_activity.iter().find(|f| f.user_id == fans[2]).unwrap();
    assert_eq!(f2.last_active_ms, T0 + 500);
    assert_eq!(store.last_active(app, fans[2]).await.unwrap(), T0 + 500);
    assert_eq!(store.last_active(app, fans[3]).await.unwrap(), 0);
}

pub async fn mutes_and_likes(store: Store) {
    let (app, alice, bob, carol) = (id(), id(), id(), id());
    assert!(store.set_mute(app, alice, bob, true, T0).await.unwrap());
    assert!(!store.set_mute(app, alice, bob, true, T0).await.unwrap());
    assert_eq!(store.muted(app, alice).await.unwrap(), vec![bob]);
    assert_eq!(
        store.muting(bob, &[alice, carol]).await.unwrap(),
        vec![alice]
    );
    assert!(store.set_mute(app, alice, bob, false, T0).await.unwrap());
    assert!(store.muted(app, alice).await.unwrap().is_empty());

    let p = create(&store, &post(app, alice, "like me")).await;
    assert!(store.set_like(p.id, bob, true, T0).await.unwrap());
    assert!(!store.set_like(p.id, bob, true, T0).await.unwrap());
    assert!(store.set_like(p.id, carol, true, T0).await.unwrap());
    assert_eq!(store.post(app, p.id).await.unwrap().unwrap().like_count, 2);
    assert_eq!(store.liked(bob, &[p.id, id()]).await.unwrap(), vec![p.id]);
    let q = create(&store, &post(app, alice, "and me")).await;
    assert!(store.set_like(q.id, bob, true, T0).await.unwrap());
    let mut all = store.likes_of(bob, 10).await.unwrap();
    all.sort_unstable();
    assert_eq!(all, vec![p.id, q.id]);
    assert_eq!(store.likes_of(bob, 1).await.unwrap().len(), 1, "limited");
    assert!(store.likes_of(alice, 10).await.unwrap().is_empty());
    assert!(store.set_like(q.id, bob, false, T0).await.unwrap());
    assert!(store.set_like(p.id, bob, false, T0).await.unwrap());
    assert!(!store.set_like(p.id, bob, false, T0).await.unwrap());
    assert_eq!(store.post(app, p.id).await.unwrap().unwrap().like_count, 1);
    assert!(
        !store.set_like(id(), bob, true, T0).await.unwrap(),
        "no such post"
    );
    store.delete_post(app, p.id).await.unwrap();
    assert!(
        !store.set_like(p.id, bob, true, T0).await.unwrap(),
        "deleted"
    );
}

pub async fn concurrent_likes_keep_an_exact_count(store: Store) {
    let (app, alice) = (id(), id());
    let p = create(&store, &post(app, alice, "popular")).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (store, pid) = (store.clone(), p.id);
        tasks.push(tokio::spawn(async move {
            let user = id();
            store.set_like(pid, user, true, T0).await.unwrap();
            store.set_like(pid, user, false, T0).await.unwrap();
            store.set_like(pid, user, true, T0).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.post(app, p.id).await.unwrap().unwrap().like_count, 40);
}

fn entry(post: i64, author: i64) -> FeedEntry {
    FeedEntry {
        post_id: Id(post),
        author_id: Id(author),
    }
}

pub async fn feeds_are_capped_newest_first(cache: Cache) {
    let user = id();
    assert_eq!(
        cache.page(user, None, 10).await.unwrap(),
        None,
        "not materialized"
    );
    cache.push(&[(user, entry(5, 1))], 3).await.unwrap();
    assert_eq!(
        cache.page(user, None, 10).await.unwrap(),
        None,
        "push skips feeds nobody built"
    );
    cache
        .replace(user, &[entry(10, 1), entry(30, 2), entry(20, 1)], 3)
        .await
        .unwrap();
    let all = cache.page(user, None, 10).await.unwrap().unwrap();
    assert_eq!(
        all.iter().map(|e| e.post_id.0).collect::<Vec<_>>(),
        vec![30, 20, 10]
    );
    cache
        .push(&[(user, entry(40, 3)), (user, entry(40, 3))], 3)
        .await
        .unwrap();
    let capped = cache.page(user, None, 10).await.unwrap().unwrap();
    assert_eq!(
        capped.iter().map(|e| e.post_id.0).collect::<Vec<_>>(),
        vec![40, 30, 20],
        "the oldest fell off"
    );
    cache.push(&[(user, entry(15, 1))], 3).await.unwrap();
    let same = cache.page(user, None, 10).await.unwrap().unwrap();
    assert_eq!(
        same.iter().map(|e| e.post_id.0).collect::<Vec<_>>(),
        vec![40, 30, 20],
        "older than the cap: not kept"
    );
    cache.push(&[(user, entry(35, 2))], 4).await.unwrap();
    let page = cache.page(user, Some(Id(35)), 2).await.unwrap().unwrap();
    assert_eq!(
        page.iter().map(|e| e.post_id.0).collect::<Vec<_>>(),
        vec![30, 20]
    );
    assert_eq!(page[0].author_id, Id(2));
    assert_eq!(
        cache.page(user, Some(Id(20)), 5).await.unwrap(),
        Some(vec![])
    );
}

pub async fn feeds_drop_posts_authors_and_whole_feeds(cache: Cache) {
    let (u1, u2) = (id(), id());
    let entries = [entry(1, 7), entry(2, 8), entry(3, 7), entry(4, 9)];
    cache.replace(u1, &entries, 800).await.unwrap();
    cache.replace(u2, &entries, 800).await.unwrap();
    cache.remove_posts(u1, &[Id(4), Id(99)]).await.unwrap();
    cache.remove_author(u1, Id(7)).await.unwrap();
    let left = cache.page(u1, None, 10).await.unwrap().unwrap();
    assert_eq!(
        left.iter().map(|e| e.post_id.0).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(
        cache.page(u2, None, 10).await.unwrap().unwrap().len(),
        4,
        "other feeds untouched"
    );
    cache.drop_feed(u2).await.unwrap();
    assert_eq!(cache.page(u2, None, 10).await.unwrap(), None);
    // An emptied feed is still materialized: empty, not unknown.
    cache.remove_posts(u1, &[Id(2)]).await.unwrap();
    assert_eq!(cache.page(u1, None, 10).await.unwrap(), Some(vec![]));
    cache.replace(u2, &[], 800).await.unwrap();
    assert_eq!(
        cache.page(u2, None, 10).await.unwrap(),
        Some(vec![]),
        "an empty rebuild is materialized"
    );
    cache.push(&[(u2, entry(50, 1))], 800).await.unwrap();
    assert_eq!(cache.page(u2, None, 10).await.unwrap().unwrap().len(), 1);
}

pub async fn many_feeds_take_pushes_in_one_call(cache: Cache) {
    let users: Vec<Id> = (0..50).map(|_| id()).collect();
    for u in &users {
        cache.replace(*u, &[], 800).await.unwrap();
    }
    let mut batch = Vec::new();
    for (i, u) in users.iter().enumerate() {
        for p in 0..20 {
            batch.push((*u, entry(1_000 + p * 100 + i as i64, 3)));
        }
    }
    cache.push(&batch, 800).await.unwrap();
    for u in &users {
        assert_eq!(cache.page(*u, None, 100).await.unwrap().unwrap().len(), 20);
    }
}

pub async fn feeds_drop_and_lose_posts_in_batches(cache: Cache) {
    let users: Vec<Id> = (0..5).map(|_| id()).collect();
    let entries = [entry(1, 7), entry(2, 8), entry(3, 7)];
    for u in &users {
        cache.replace(*u, &entries, 800).await.unwrap();
    }
    let never_built = id();
    cache
        .remove_posts_from(&[users[0], users[1], never_built], &[Id(2), Id(3)])
        .await
        .unwrap();
    for u in &users[..2] {
        let left = cache.page(*u, None, 10).await.unwrap().unwrap();
        assert_eq!(left, vec![entry(1, 7)]);
    }
    assert_eq!(
        cache.page(never_built, None, 10).await.unwrap(),
        None,
        "removing from a feed nobody built does not build it"
    );
    cache
        .drop_feeds(&[users[2], users[3], never_built])
        .await
        .unwrap();
    assert_eq!(cache.page(users[2], None, 10).await.unwrap(), None);
    assert_eq!(cache.page(users[3], None, 10).await.unwrap(), None);
    assert_eq!(
        cache.page(users[4], None, 10).await.unwrap().unwrap().len(),
        3,
        "others untouched"
    );
    cache.drop_feeds(&[]).await.unwrap();
    cache.remove_posts_from(&[], &[Id(1)]).await.unwrap();
}

type Objects = Arc<dyn tidings_feed::objects::ObjectCache>;

fn key(name: &str) -> String {
    format!("{name}:{}", id().0)
}

pub async fn objects_round_trip_and_delete(c: Objects) {
    let (a, b, missing) = (key("a"), key("b"), key("missing"));
    let ttl = std::time::Duration::from_secs(60);
    c.put_many(
        &[(a.clone(), b"alpha".to_vec()), (b.clone(), vec![0, 255, 7])],
        ttl,
    )
    .await
    .unwrap();
    let got = c
        .get_many(&[a.clone(), missing.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![Some(b"alpha".to_vec()), None, Some(vec![0, 255, 7])]
    );
    c.put_many(&[(a.clone(), b"beta".to_vec())], ttl)
        .await
        .unwrap();
    assert_eq!(
        c.get_many(std::slice::from_ref(&a)).await.unwrap(),
        vec![Some(b"beta".to_vec())]
    );
    c.delete(&[a.clone(), missing]).await.unwrap();
    assert_eq!(
        c.get_many(&[a, b]).await.unwrap(),
        vec![None, Some(vec![0, 255, 7])]
    );
    assert!(c.get_many(&[]).await.unwrap().is_empty());
}

pub async fn objects_expire(c: Objects) {
    let k = key("short");
    c.put_many(
        &[(k.clone(), b"x".to_vec())],
        std::time::Duration::from_millis(100),
    )
    .await
    .unwrap();
    assert_eq!(
        c.get_many(std::slice::from_ref(&k)).await.unwrap(),
        vec![Some(b"x".to_vec())]
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if c.get_many(std::slice::from_ref(&k)).await.unwrap() == vec![None] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
