//! Signup, login, tokens and the login throttle.

use tidings_client::{CreateUser, Signup};

use crate::helpers::{assert_problem, spawn_with, Backend, TestApp};
use crate::on_both_backends;

async fn signup_then_login_gives_working_tokens(app: TestApp) {
    let anon = app.client.for_app_key(&app.creds.app_key);
    let session = anon
        .signup(&Signup {
            username: "Alice".into(),
            password: "correct horse battery".into(),
            display_name: Some("Alice A.".into()),
            email: Some("alice@Example.com".into()),
            phone: Some("+82 10-1234-5678".into()),
            locale: Some("ko_kr".into()),
            timezone: Some("asia/seoul".into()),
        })
        .await
        .unwrap();
    // Stored in canonical form.
    let u = &session.user;
    assert_eq!(u.username, "alice");
    assert_eq!(u.email.as_deref(), Some("alice@example.com"));
    assert_eq!(u.phone.as_deref(), Some("+821012345678"));
    assert_eq!(u.locale.as_deref(), Some("ko-KR"));
    assert_eq!(u.timezone.as_deref(), Some("Asia/Seoul"));
    assert!(
        u.id.chars().all(|c| c.is_ascii_digit()),
        "ids are decimal strings"
    );
    assert_eq!(
        app.client.as_user(&session.token).me().await.unwrap(),
        session.user
    );

    let login = anon.login("alice", "correct horse battery").await.unwrap();
    assert_eq!(login.user.id, session.user.id);
    assert_eq!(
        app.client.as_user(&login.token).me().await.unwrap().id,
        session.user.id
    );

    assert_problem(
        anon.login("alice", "wrong password!").await.unwrap_err(),
        401,
        "unauthorized",
    );
    assert_problem(
        anon.login("nobody", "whatever123").await.unwrap_err(),
        401,
        "unauthorized",
    );
    // A user created without a password cannot log in with one.
    app.app
        .create_user(&CreateUser {
            username: Some("nopass".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_problem(
        anon.login("nopass", "anything12").await.unwrap_err(),
        401,
        "unauthorized",
    );
}

async fn signup_needs_a_known_app_key(app: TestApp) {
    let req = Signup {
        username: "bob".into(),
        password: "password123".into(),
        ..Default::default()
    };
    assert_problem(
        app.client.signup(&req).await.unwrap_err(),
        401,
        "unauthorized",
    );
    assert_problem(
        app.client
            .for_app_key("ak_nope")
            .signup(&req)
            .await
            .unwrap_err(),
        401,
        "unauthorized",
    );
}

async fn minted_tokens_work_and_expire_bounds_are_checked(app: TestApp) {
    let user = app
        .app
        .create_user(&CreateUser {
            external_id: Some("crm-42".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        user.username,
        format!("u{}", user.id),
        "a username is made up when none is given"
    );
    assert_eq!(user.external_id.as_deref(), Some("crm-42"));
    let token = app.app.mint_token(&user.id, Some(60)).await.unwrap();
    assert_eq!(
        app.client.as_user(&token.token).me().await.unwrap().id,
        user.id
    );
    assert_problem(
        app.app.mint_token(&user.id, Some(0)).await.unwrap_err(),
        422,
        "validation_failed",
    );
    assert_problem(
        app.app
            .mint_token(&user.id, Some(u64::MAX))
            .await
            .unwrap_err(),
        422,
        "validation_failed",
    );
    assert_problem(
        app.app.mint_token("12345", None).await.unwrap_err(),
        404,
        "not_found",
    );
    // A user token cannot mint.
    let as_user = app.client.as_user(&token.token);
    assert_problem(
        as_user.mint_token(&user.id, None).await.unwrap_err(),
        403,
        "forbidden",
    );
}

async fn tampered_and_foreign_tokens_are_refused(app: TestApp) {
    let (_, alice) = app.user("alice").await;
    let token = app
        .app
        .mint_token(&alice.me().await.unwrap().id, None)
        .await
        .unwrap()
        .token;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_problem(
        app.client.as_user(&forged).me().await.unwrap_err(),
        401,
        "unauthorized",
    );
    assert_problem(
        app.client.as_user("not.a.token").me().await.unwrap_err(),
        401,
        "unauthorized",
    );
    assert_problem(
        app.client.as_user("").me().await.unwrap_err(),
        401,
        "unauthorized",
    );
}

on_both_backends!(
    signup_then_login_gives_working_tokens,
    signup_needs_a_known_app_key,
    minted_tokens_work_and_expire_bounds_are_checked,
    tampered_and_foreign_tokens_are_refused,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_down_per_account() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.auth.login_free_failures = 2;
        c.auth.login_base_delay_ms = 60_000;
    })
    .await
    .unwrap();
    let anon = app.client.for_app_key(&app.creds.app_key);
    anon.signup(&Signup {
        username: "carol".into(),
        password: "the right one".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        assert_problem(
            anon.login("carol", "the wrong one").await.unwrap_err(),
            401,
            "unauthorized",
        );
    }
    // Locked now: even the right password is refused without being checked.
    match anon.login("carol", "the right one").await.unwrap_err() {
        tidings_client::Error::Api {
            status,
            problem,
            retry_after_secs,
        } => {
            assert_eq!((status, problem.code.as_str()), (429, "rate_limited"));
            let wait = retry_after_secs.expect("Retry-After");
            assert!((1..=60).contains(&wait), "{wait}");
        }
        other => panic!("{other:?}"),
    }
    // Another account is not affected.
    anon.signup(&Signup {
        username: "dave".into(),
        password: "dave's password".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    anon.login("dave", "dave's password").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_down_per_address() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.auth.login_ip_failures = 4;
    })
    .await
    .unwrap();
    let anon = app.client.for_app_key(&app.creds.app_key);
    anon.signup(&Signup {
        username: "erin".into(),
        password: "erin's password".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // Spread over many names, so no single account trips its own limit.
    for i in 0..4 {
        assert_problem(
            anon.login(&format!("guess{i}"), "password123")
                .await
                .unwrap_err(),
            401,
            "unauthorized",
        );
    }
    assert_problem(
        anon.login("erin", "erin's password").await.unwrap_err(),
        429,
        "rate_limited",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_signup_is_forbidden() {
    let app = spawn_with(Backend::Sqlite, |c| c.auth.open_signup = false)
        .await
        .unwrap();
    let err = app
        .client
        .for_app_key(&app.creds.app_key)
        .signup(&Signup {
            username: "frank".into(),
            password: "password123".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_problem(err, 403, "forbidden");
}
