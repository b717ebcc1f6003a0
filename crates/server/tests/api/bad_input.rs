//! Bad input of every kind is answered with a clear problem+json, never a 500.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tidings_client::UpdateMe;

use crate::helpers::{assert_problem, spawn_with, Backend, TestApp};
use crate::on_both_backends;

struct Raw {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl Raw {
    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .header("authorization", &self.auth)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let ct = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(
            ct, "application/problem+json",
            "{method} {path} answered {status} with {ct}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status.as_u16());
        for key in ["type", "title", "detail", "code"] {
            assert!(body[key].is_string(), "{key} missing in {body}");
        }
        (status, body)
    }
}

async fn raw_as_user(app: &TestApp) -> Raw {
    let (user, _) = app.user("raw").await;
    let token = app.app.mint_token(&user.id, None).await.unwrap().token;
    Raw {
        http: reqwest::Client::new(),
        base: app.base.clone(),
        auth: format!("Bearer {token}"),
    }
}

async fn malformed_bodies(app: TestApp) {
    let raw = raw_as_user(&app).await;
    let json = Some("application/json");
    let (s, b) = raw.send("PATCH", "/v1/me", json, "{not json").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_failed"))
    );
    let (s, b) = raw
        .send("PATCH", "/v1/me", json, r#"{"display_name": 42}"#)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert!(
        b["detail"].as_str().unwrap().contains("display_name"),
        "{b}"
    );
    let (s, _) = raw
        .send("PATCH", "/v1/me", json, r#"{"surname": "x"}"#)
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused, not ignored"
    );
    let (s, b) = raw
        .send("PATCH", "/v1/me", None, r#"{"display_name": "x"}"#)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (s, _) = raw
        .send("POST", "/v1/me/devices", json, r#"{"platform": "apns"}"#)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = raw
        .send(
            "PUT",
            "/v1/me/preferences",
            json,
            r#"{"channels": {"push": "yes"}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = raw
        .send(
            "PUT",
            "/v1/me/preferences",
            json,
            r#"{"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn bad_paths_queries_methods_and_routes(app: TestApp) {
    let raw = raw_as_user(&app).await;
    let (s, _) = raw.send("GET", "/v1/users/not-a-number", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = raw.send("GET", "/v1/users/-5", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = raw
        .send("GET", "/v1/users/99999999999999999999999", None, "")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = raw.send("GET", "/v1/users?limit=abc", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = raw.send("GET", "/v1/users?limit=101", None, "").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
    let (s, _) = raw.send("GET", "/v1/users?limit=0", None, "").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = raw.send("GET", "/v1/users?after=%%%", None, "").await;
    assert!(
        s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
        "{s}"
    );
    let (s, _) = raw
        .send("GET", "/v1/users?after=!!notacursor!!", None, "")
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = raw.send("GET", "/v1/users?query=a%20b", None, "").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = raw.send("GET", "/v1/nowhere", None, "").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, b) = raw.send("DELETE", "/v1/me", None, "").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

async fn invalid_fields_name_themselves(app: TestApp) {
    let (_, alice) = app.user("alice").await;
    let cases: [(UpdateMe, &str); 6] = [
        (
            UpdateMe {
                phone: Some("010-1234-5678".into()),
                ..Default::default()
            },
            "phone",
        ),
        (
            UpdateMe {
                email: Some("not-an-email".into()),
                ..Default::default()
            },
            "email",
        ),
        (
            UpdateMe {
                timezone: Some("Mars/Base".into()),
                ..Default::default()
            },
            "timezone",
        ),
        (
            UpdateMe {
                locale: Some("!!".into()),
                ..Default::default()
            },
            "locale",
        ),
        (
            UpdateMe {
                avatar_url: Some("ftp://x".into()),
                ..Default::default()
            },
            "avatar_url",
        ),
        (
            UpdateMe {
                display_name: Some("x".repeat(65)),
                ..Default::default()
            },
            "display_name",
        ),
    ];
    for (patch, field) in cases {
        match alice.update_me(&patch).await.unwrap_err() {
            tidings_client::Error::Api {
                status, problem, ..
            } => {
                assert_eq!(status, 422);
                assert_eq!(problem.code, "validation_failed");
                assert_eq!(problem.field.as_deref(), Some(field));
            }
            other => panic!("{other:?}"),
        }
    }
    let anon = app.client.for_app_key(&app.creds.app_key);
    for (username, password) in [
        ("ab", "password123"),
        ("has space", "password123"),
        ("okname", "short"),
    ] {
        let err = anon
            .signup(&tidings_client::Signup {
                username: username.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_problem(err, 422, "validation_failed");
    }
}

on_both_backends!(
    malformed_bodies,
    bad_paths_queries_methods_and_routes,
    invalid_fields_name_themselves
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413() {
    let app = spawn_with(Backend::Sqlite, |c| c.limits.body_bytes = 1024)
        .await
        .unwrap();
    let raw = raw_as_user(&app).await;
    let big = json!({"display_name": "x".repeat(4096)}).to_string();
    let (s, b) = raw
        .send("PATCH", "/v1/me", Some("application/json"), big)
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // Just under the limit is fine.
    let (_, alice) = app.user("alice").await;
    alice
        .update_me(&UpdateMe {
            display_name: Some("ok".into()),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_request_is_a_503_problem_with_retry_after() {
    // A signup hashes its password with argon2id (tens of milliseconds), which cannot
    // finish inside a 1 ms budget.
    let app = spawn_with(Backend::Sqlite, |c| c.limits.request_timeout_ms = 1)
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(app.url("/v1/auth/signup"))
        .header("x-app-key", &app.creds.app_key)
        .json(&json!({"username": "slowpoke", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
}
