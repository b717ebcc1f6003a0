//! Users, profiles, search, devices and preferences.

use std::collections::BTreeMap;

use tidings_client::{CreateUser, Preferences, QuietHours, UpdateMe};

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_backends;

async fn profile_update_sets_and_clears(app: TestApp) {
    let (user, alice) = app.user("alice").await;
    let updated = alice
        .update_me(&UpdateMe {
            display_name: Some("  Alice  ".into()),
            phone: Some("+1 (415) 555-0100".into()),
            avatar_url: Some("https://cdn.example.com/a.png".into()),
            clear: vec!["email"],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.display_name.as_deref(), Some("Alice"));
    assert_eq!(updated.phone.as_deref(), Some("+14155550100"));
    assert_eq!(updated.email, None);
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://cdn.example.com/a.png")
    );
    assert_eq!(updated.created_at, user.created_at);
    assert_eq!(alice.me().await.unwrap(), updated);
    // An empty patch changes nothing.
    assert_eq!(
        alice.update_me(&UpdateMe::default()).await.unwrap(),
        updated
    );
}

async fn others_see_the_public_profile_only(app: TestApp) {
    let (alice_user, _) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let seen_by_bob = bob.user(&alice_user.id).await.unwrap();
    assert_eq!(seen_by_bob.username, "alice");
    assert_eq!(seen_by_bob.email, None, "contact details are private");
    let seen_by_app = app.app.user(&alice_user.id).await.unwrap();
    assert_eq!(seen_by_app.email.as_deref(), Some("alice@example.com"));
    assert_problem(bob.user("999999").await.unwrap_err(), 404, "not_found");
}

async fn search_pages_through_a_prefix(app: TestApp) {
    for name in ["sam", "sam.b", "sam_c", "samantha", "samuel", "sandy"] {
        app.user(name).await;
    }
    let (_, viewer) = app.user("viewer").await;
    let first = viewer.search_users("SAM", Some(2), None).await.unwrap();
    let names: Vec<_> = first.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["sam", "sam.b"]);
    let cursor = first.next_cursor.expect("more pages");
    let second = viewer
        .search_users("sam", Some(2), Some(&cursor))
        .await
        .unwrap();
    let names: Vec<_> = second.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["sam_c", "samantha"]);
    let third = viewer
        .search_users("sam", Some(2), Some(&second.next_cursor.unwrap()))
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.next_cursor, None);
    assert!(
        third.items[0].email.is_none(),
        "users see public profiles in search"
    );
    let by_app = app.app.search_users("sandy", None, None).await.unwrap();
    assert_eq!(by_app.items[0].email.as_deref(), Some("sandy@example.com"));
}

async fn devices_upsert_list_and_delete(app: TestApp) {
    let (_, alice) = app.user("alice").await;
    let d1 = alice
        .register_device("apns", "a1b2c3d4e5f6", Some("com.example.app"))
        .await
        .unwrap();
    let again = alice
        .register_device("apns", "a1b2c3d4e5f6", None)
        .await
        .unwrap();
    assert_eq!(
        again.id, d1.id,
        "same platform and token is the same device"
    );
    let d2 = alice
        .register_device("fcm", "fcm-token-xyz:APA91", None)
        .await
        .unwrap();
    let list = alice.devices().await.unwrap();
    assert_eq!(
        list.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [d1.id.as_str(), d2.id.as_str()]
    );
    alice.delete_device(&d1.id).await.unwrap();
    assert_eq!(alice.devices().await.unwrap().len(), 1);
    assert_problem(
        alice.delete_device(&d1.id).await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        alice
            .register_device("webpush", "x", None)
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
    assert_problem(
        alice
            .register_device("apns", "has space", None)
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
}

async fn preferences_default_then_stored(app: TestApp) {
    let (user, alice) = app.user("alice").await;
    assert_eq!(alice.preferences().await.unwrap(), Preferences::default());
    let mut prefs = Preferences::default();
    prefs.channels.sms = false;
    prefs.categories.insert(
        "marketing".into(),
        BTreeMap::from([("email".to_string(), false)]),
    );
    prefs.quiet_hours = Some(QuietHours {
        start: "22:00".into(),
        end: "07:00".into(),
        timezone: "europe/berlin".into(),
    });
    let stored = alice.put_preferences(&prefs).await.unwrap();
    assert_eq!(
        stored.quiet_hours.as_ref().unwrap().timezone,
        "Europe/Berlin"
    );
    assert_eq!(alice.preferences().await.unwrap(), stored);
    assert_eq!(app.app.user_preferences(&user.id).await.unwrap(), stored);
    // The app may set them too.
    let mut by_app = stored.clone();
    by_app.quiet_hours = None;
    app.app
        .put_user_preferences(&user.id, &by_app)
        .await
        .unwrap();
    assert_eq!(alice.preferences().await.unwrap(), by_app);
    assert_problem(
        app.app.user_preferences("424242").await.unwrap_err(),
        404,
        "not_found",
    );
}

async fn duplicates_conflict(app: TestApp) {
    app.user("taken").await;
    let err = app
        .app
        .create_user(&CreateUser {
            username: Some("Taken".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_problem(err, 409, "conflict");
    app.app
        .create_user(&CreateUser {
            external_id: Some("ext-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let err = app
        .app
        .create_user(&CreateUser {
            external_id: Some("ext-1".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_problem(err, 409, "conflict");
}

on_both_backends!(
    profile_update_sets_and_clears,
    others_see_the_public_profile_only,
    search_pages_through_a_prefix,
    devices_upsert_list_and_delete,
    preferences_default_then_stored,
    duplicates_conflict,
);
