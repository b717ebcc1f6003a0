//! Conformance tests of [`AccountStore`].

use std::sync::Arc;

use tidings_platform::auth::generate_app;
use tidings_platform::model::{
    NewDevice, Platform, Preferences, QuietHours, UserPatch, UserRecord,
};
use tidings_platform::store::AccountStore;
use tidings_platform::{Id, StoreError};

type Store = Arc<dyn AccountStore>;

static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000);

fn id() -> Id {
    Id(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

async fn app(store: &Store, name: &str) -> Id {
    let (app, _) = generate_app(id(), name, 1_700_000_000_000);
    store.insert_app(&app).await.expect("insert app");
    app.id
}

fn user(app: Id, username: &str) -> UserRecord {
    UserRecord {
        id: id(),
        app_id: app,
        username: username.into(),
        display_name: Some(format!("{username} display")),
        email: Some(format!("{username}@example.com")),
        phone: Some("+821012345678".into()),
        locale: Some("ko".into()),
        timezone: Some("Asia/Seoul".into()),
        avatar_url: None,
        external_id: None,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at_ms: 1_700_000_000_123,
        updated_at_ms: 1_700_000_000_123,
    }
}

pub async fn ping_answers(store: Store) {
    store.ping().await.expect("ping");
}

pub async fn apps_round_trip(store: Store) {
    let (a, creds) = generate_app(id(), "shop", 1_700_000_000_000);
    let (b, _) = generate_app(id(), "blog", 1_700_000_000_001);
    store.insert_app(&a).await.unwrap();
    store.insert_app(&b).await.unwrap();
    assert_eq!(store.app_by_id(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store.app_by_key(&creds.app_key).await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(store.app_by_key("ak_missing").await.unwrap(), None);
    assert_eq!(store.app_by_id(Id(1)).await.unwrap(), None);
    let all = store.list_apps().await.unwrap();
    assert_eq!(all, vec![a, b], "apps are listed oldest first");
}

pub async fn duplicate_app_key_conflicts(store: Store) {
    let (a, _) = generate_app(id(), "one", 0);
    store.insert_app(&a).await.unwrap();
    let mut b = a.clone();
    b.id = id();
    let err = store.insert_app(&b).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub async fn users_round_trip_and_stay_in_their_app(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    let alice = user(app_a, "alice");
    store.insert_user(&alice).await.unwrap();
    assert_eq!(
        store.user_by_id(app_a, alice.id).await.unwrap().as_ref(),
        Some(&alice)
    );
    assert_eq!(
        store
            .user_by_username(app_a, "alice")
            .await
            .unwrap()
            .as_ref(),
        Some(&alice)
    );
    // Another app sees nothing of it, by id or by name.
    assert_eq!(store.user_by_id(app_b, alice.id).await.unwrap(), None);
    assert_eq!(store.user_by_username(app_b, "alice").await.unwrap(), None);
    // The same name is free in another app.
    let other_alice = user(app_b, "alice");
    store.insert_user(&other_alice).await.unwrap();
    assert_eq!(
        store
            .user_by_username(app_b, "alice")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(other_alice.id)
    );
    // Optional fields survive as None.
    let mut bare = user(app_a, "bare");
    bare.display_name = None;
    bare.email = None;
    bare.phone = None;
    bare.locale = None;
    bare.timezone = None;
    bare.password_hash = None;
    store.insert_user(&bare).await.unwrap();
    assert_eq!(
        store.user_by_id(app_a, bare.id).await.unwrap().as_ref(),
        Some(&bare)
    );
}

pub async fn duplicate_username_and_external_id_conflict(store: Store) {
    let app_a = app(&store, "a").await;
    store.insert_user(&user(app_a, "bob")).await.unwrap();
    let err = store.insert_user(&user(app_a, "bob")).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict("username".into()));

    let mut x1 = user(app_a, "x1");
    x1.external_id = Some("crm-1".into());
    store.insert_user(&x1).await.unwrap();
    let mut x2 = user(app_a, "x2");
    x2.external_id = Some("crm-1".into());
    let err = store.insert_user(&x2).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict("external_id".into()));
    // Many users without an external id do not collide with each other.
    store.insert_user(&user(app_a, "n1")).await.unwrap();
    store.insert_user(&user(app_a, "n2")).await.unwrap();
}

pub async fn update_user_sets_and_clears_fields(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    let carol = user(app_a, "carol");
    store.insert_user(&carol).await.unwrap();
    let patch = UserPatch {
        display_name: Some(Some("Carol C.".into())),
        email: Some(None),
        avatar_url: Some(Some("https://cdn.example.com/c.png".into())),
        ..Default::default()
    };
    let updated = store
        .update_user(app_a, carol.id, &patch, 1_800_000_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.display_name.as_deref(), Some("Carol C."));
    assert_eq!(updated.email, None);
    assert_eq!(updated.phone, carol.phone, "fields not in the patch stay");
    assert_eq!(updated.updated_at_ms, 1_800_000_000_000);
    assert_eq!(
        store.user_by_id(app_a, carol.id).await.unwrap().as_ref(),
        Some(&updated)
    );
    // Another app cannot change it.
    assert_eq!(
        store.update_user(app_b, carol.id, &patch, 1).await.unwrap(),
        None
    );
    assert_eq!(
        store.update_user(app_a, Id(42), &patch, 1).await.unwrap(),
        None
    );
}

pub async fn search_users_by_prefix_with_cursor(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    for name in ["dan", "dana", "daniel", "dan_b", "dan.c", "david", "erin"] {
        store.insert_user(&user(app_a, name)).await.unwrap();
    }
    store.insert_user(&user(app_b, "danny")).await.unwrap();
    let names = |v: Vec<UserRecord>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let all_dan = names(store.search_users(app_a, "dan", None, 10).await.unwrap());
    assert_eq!(all_dan, ["dan", "dan.c", "dan_b", "dana", "daniel"]);
    let first = names(store.search_users(app_a, "dan", None, 2).await.unwrap());
    assert_eq!(first, ["dan", "dan.c"]);
    let next = names(
        store
            .search_users(app_a, "dan", Some("dan.c"), 2)
            .await
            .unwrap(),
    );
    assert_eq!(next, ["dan_b", "dana"]);
    let everyone = names(store.search_users(app_a, "", None, 100).await.unwrap());
    assert_eq!(everyone.len(), 7);
    assert!(store
        .search_users(app_a, "zed", None, 10)
        .await
        .unwrap()
        .is_empty());
    // A cursor that sorts before the prefix does not leak names outside it.
    let from_a = names(
        store
            .search_users(app_a, "dav", Some("a"), 10)
            .await
            .unwrap(),
    );
    assert_eq!(from_a, ["david"]);
}

pub async fn users_by_ids_returns_known_users_of_the_app(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    let mut ids = Vec::new();
    for i in 0..150 {
        let u = user(app_a, &format!("bulk{i:03}"));
        ids.push(u.id);
        store.insert_user(&u).await.unwrap();
    }
    let foreign = user(app_b, "foreign");
    store.insert_user(&foreign).await.unwrap();
    let mut asked = ids.clone();
    asked.push(foreign.id);
    asked.push(Id(7));
    let mut got: Vec<Id> = store
        .users_by_ids(app_a, &asked)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    got.sort();
    assert_eq!(got, ids);
    assert!(store.users_by_ids(app_a, &[]).await.unwrap().is_empty());
}

pub async fn devices_upsert_move_disable_and_delete(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    let erin = user(app_a, "erin");
    let frank = user(app_a, "frank");
    store.insert_user(&erin).await.unwrap();
    store.insert_user(&frank).await.unwrap();
    let new = |user: Id, token: &str, topic: Option<&str>, now: i64| NewDevice {
        id: id(),
        app_id: app_a,
        user_id: user,
        platform: Platform::Apns,
        token: token.into(),
        topic: topic.map(Into::into),
        now_ms: now,
    };
    let d1 = store
        .upsert_device(&new(erin.id, "tok-1", Some("com.x"), 10))
        .await
        .unwrap();
    assert_eq!(
        (d1.user_id, d1.token.as_str(), d1.topic.as_deref()),
        (erin.id, "tok-1", Some("com.x"))
    );
    // Registering again keeps the id and takes the new topic.
    let again = store
        .upsert_device(&new(erin.id, "tok-1", None, 20))
        .await
        .unwrap();
    assert_eq!(again.id, d1.id);
    assert_eq!(again.topic, None);
    assert_eq!(again.created_at_ms, 10);
    assert_eq!(again.updated_at_ms, 20);
    // The same token on another platform is another device.
    let fcm = store
        .upsert_device(&NewDevice {
            platform: Platform::Fcm,
            ..new(erin.id, "tok-1", None, 30)
        })
        .await
        .unwrap();
    assert_ne!(fcm.id, d1.id);
    assert_eq!(store.list_devices(app_a, erin.id).await.unwrap().len(), 2);
    // The token moves to frank when he signs in on that phone.
    let moved = store
        .upsert_device(&new(frank.id, "tok-1", None, 40))
        .await
        .unwrap();
    assert_eq!((moved.id, moved.user_id), (d1.id, frank.id));
    assert_eq!(store.list_devices(app_a, erin.id).await.unwrap().len(), 1);
    // Erin cannot delete frank's device, nor can another app.
    assert!(!store.delete_device(app_a, erin.id, d1.id).await.unwrap());
    assert!(!store.delete_device(app_b, frank.id, d1.id).await.unwrap());
    assert!(!store
        .disable_device(app_b, Platform::Apns, "tok-1", 50)
        .await
        .unwrap());
    // A dead token disappears from the list, and comes back when registered again.
    assert!(store
        .disable_device(app_a, Platform::Apns, "tok-1", 50)
        .await
        .unwrap());
    assert!(!store
        .disable_device(app_a, Platform::Apns, "tok-1", 51)
        .await
        .unwrap());
    assert!(store
        .list_devices(app_a, frank.id)
        .await
        .unwrap()
        .is_empty());
    let revived = store
        .upsert_device(&new(frank.id, "tok-1", None, 60))
        .await
        .unwrap();
    assert_eq!(revived.id, d1.id);
    assert_eq!(
        store.list_devices(app_a, frank.id).await.unwrap(),
        vec![revived.clone()]
    );
    assert!(store.delete_device(app_a, frank.id, d1.id).await.unwrap());
    assert!(store
        .list_devices(app_a, frank.id)
        .await
        .unwrap()
        .is_empty());
    assert!(!store.delete_device(app_a, frank.id, d1.id).await.unwrap());
}

pub async fn preferences_round_trip(store: Store) {
    let app_a = app(&store, "a").await;
    let app_b = app(&store, "b").await;
    let gina = user(app_a, "gina");
    store.insert_user(&gina).await.unwrap();
    assert_eq!(store.preferences(app_a, gina.id).await.unwrap(), None);
    let mut prefs = Preferences::default();
    prefs.channels.sms = false;
    prefs
        .categories
        .entry("marketing".into())
        .or_default()
        .insert(tidings_platform::model::Channel::Email, false);
    prefs.quiet_hours = Some(QuietHours {
        start: "22:00".into(),
        end: "07:00".into(),
        timezone: "Asia/Seoul".into(),
    });
    store
        .put_preferences(app_a, gina.id, &prefs, 5)
        .await
        .unwrap();
    assert_eq!(
        store.preferences(app_a, gina.id).await.unwrap().as_ref(),
        Some(&prefs)
    );
    prefs.quiet_hours = None;
    store
        .put_preferences(app_a, gina.id, &prefs, 6)
        .await
        .unwrap();
    assert_eq!(
        store.preferences(app_a, gina.id).await.unwrap().as_ref(),
        Some(&prefs)
    );
    let hank = user(app_a, "hank");
    store.insert_user(&hank).await.unwrap();
    let batch = store
        .preferences_of(app_a, &[gina.id, hank.id])
        .await
        .unwrap();
    assert_eq!(
        batch,
        vec![(gina.id, prefs.clone())],
        "users without preferences are left out"
    );
    assert!(store
        .preferences_of(app_b, &[gina.id])
        .await
        .unwrap()
        .is_empty());
    // Another app neither reads nor writes them.
    assert_eq!(store.preferences(app_b, gina.id).await.unwrap(), None);
    store
        .put_preferences(app_b, gina.id, &Preferences::default(), 7)
        .await
        .unwrap();
    assert_eq!(
        store.preferences(app_a, gina.id).await.unwrap().as_ref(),
        Some(&prefs)
    );
}

pub async fn concurrent_writes_all_land_and_one_failure_stays_alone(store: Store) {
    let app_a = app(&store, "a").await;
    store.insert_user(&user(app_a, "taken")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        // Every 50th write collides; it must fail without taking its batch with it.
        let name = if i % 50 == 0 {
            "taken".to_string()
        } else {
            format!("c{i:03}")
        };
        tasks.push(tokio::spawn(async move {
            (name.clone(), store.insert_user(&user(app_a, &name)).await)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (name, result) = t.await.unwrap();
        match result {
            Ok(()) => {
                ok += 1;
                assert!(store
                    .user_by_username(app_a, &name)
                    .await
                    .unwrap()
                    .is_some());
            }
            Err(e) => {
                assert_eq!(name, "taken");
                assert_eq!(e, StoreError::Conflict("username".into()));
            }
        }
    }
    assert_eq!(ok, 196);
    assert_eq!(
        store
            .search_users(app_a, "c", None, 1000)
            .await
            .unwrap()
            .len(),
        196
    );
}
