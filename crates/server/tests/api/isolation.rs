//! Who may touch what: apps are sealed from each other, users from each other's
//! devices and preferences, and nothing works without credentials.

use reqwest::StatusCode;
use tidings_client::{CreateUser, Preferences};

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_backends;

async fn apps_cannot_see_each_others_users(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    let other = app.second_app().await;
    assert_problem(other.user(&alice.id).await.unwrap_err(), 404, "not_found");
    assert!(other
        .search_users("alice", None, None)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_problem(
        other.mint_token(&alice.id, None).await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        other.user_preferences(&alice.id).await.unwrap_err(),
        404,
        "not_found",
    );
    assert_problem(
        other
            .put_user_preferences(&alice.id, &Preferences::default())
            .await
            .unwrap_err(),
        404,
        "not_found",
    );
    // The same username is free in the other app, and its user is not alice.
    let other_alice = other
        .create_user(&CreateUser {
            username: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_ne!(other_alice.id, alice.id);
    // Alice's token does not reach into the other app's users either.
    assert_problem(
        alice_client.user(&other_alice.id).await.unwrap_err(),
        404,
        "not_found",
    );
}

async fn users_cannot_touch_each_others_devices_or_preferences(app: TestApp) {
    let (alice, alice_client) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let device = alice_client
        .register_device("apns", "aaaa1111", None)
        .await
        .unwrap();
    assert_problem(
        bob.delete_device(&device.id).await.unwrap_err(),
        404,
        "not_found",
    );
    assert!(bob.devices().await.unwrap().is_empty());
    assert_eq!(alice_client.devices().await.unwrap().len(), 1);
    // The per-user preference routes are the app's; a user token is refused.
    assert_problem(
        bob.user_preferences(&alice.id).await.unwrap_err(),
        403,
        "forbidden",
    );
    assert_problem(
        bob.put_user_preferences(&alice.id, &Preferences::default())
            .await
            .unwrap_err(),
        403,
        "forbidden",
    );
    assert_problem(
        bob.create_user(&CreateUser::default()).await.unwrap_err(),
        403,
        "forbidden",
    );
}

async fn no_credentials_is_401_everywhere(app: TestApp) {
    let http = reqwest::Client::new();
    let routes = [
        ("GET", "/v1/me"),
        ("PATCH", "/v1/me"),
        ("GET", "/v1/me/devices"),
        ("POST", "/v1/me/devices"),
        ("DELETE", "/v1/me/devices/1"),
        ("GET", "/v1/me/preferences"),
        ("PUT", "/v1/me/preferences"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users"),
        ("GET", "/v1/users/1"),
        ("POST", "/v1/users/1/tokens"),
        ("GET", "/v1/users/1/preferences"),
        ("PUT", "/v1/users/1/preferences"),
    ];
    for (method, path) in routes {
        let response = http
            .request(method.parse().unwrap(), app.url(path))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert!(response.headers().contains_key("www-authenticate"));
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(ct, "application/problem+json", "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    // Wrong app secret.
    let wrong = app.client.as_app(&app.creds.app_key, "as_wrong");
    assert_problem(
        wrong.search_users("", None, None).await.unwrap_err(),
        401,
        "unauthorized",
    );
}

on_both_backends!(
    apps_cannot_see_each_others_users,
    users_cannot_touch_each_others_devices_or_preferences,
    no_credentials_is_401_everywhere,
);
