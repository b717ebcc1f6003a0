//! Health, readiness, metrics and the OpenAPI document.

use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_both_backends;

async fn health_and_readiness(app: TestApp) {
    assert_eq!(app.client.healthz().await.unwrap()["status"], "ok");
    assert_eq!(app.client.readyz().await.unwrap()["status"], "ready");
    // A graceful stop returns once in-flight work is done and the store is closed.
    app.stop().await;
}

async fn metrics_count_requests_by_route_and_status(app: TestApp) {
    let (user, alice) = app.user("alice").await;
    alice.me().await.unwrap();
    alice.me().await.unwrap();
    let _ = app.client.as_user("bad").me().await;
    let _ = app.app.user(&user.id).await;
    let text = app.client.metrics_text().await.unwrap();
    let line = |route: &str, status: u16| {
        text.lines()
            .find(|l| {
                l.starts_with("tidings_http_requests_total{")
                    && l.contains("method=\"GET\"")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(line("/v1/me", 200), Some(2.0), "{text}");
    assert_eq!(line("/v1/me", 401), Some(1.0), "{text}");
    assert_eq!(
        line("/v1/users/{id}", 200),
        Some(1.0),
        "route templates, not raw paths: {text}"
    );
    assert!(
        text.contains("tidings_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// Every route the server answers is in the document, and every documented
/// operation answers something other than "no such route".
async fn openapi_covers_every_route(app: TestApp) {
    let doc = app.client.openapi().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/auth/signup", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/users", "post"),
        ("/v1/users", "get"),
        ("/v1/users/{id}", "get"),
        ("/v1/users/{id}/tokens", "post"),
        ("/v1/me", "get"),
        ("/v1/me", "patch"),
        ("/v1/me/devices", "post"),
        ("/v1/me/devices", "get"),
        ("/v1/me/devices/{id}", "delete"),
        ("/v1/me/preferences", "get"),
        ("/v1/me/preferences", "put"),
        ("/v1/users/{id}/preferences", "get"),
        ("/v1/users/{id}/preferences", "put"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let http = reqwest::Client::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            let url = app.url(&path.replace("{id}", "1"));
            let response = http
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(
                body["detail"], "no such route",
                "{method} {path} is documented but not served"
            );
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("app") && schemes.contains_key("user"));
}

on_both_backends!(
    health_and_readiness,
    metrics_count_requests_by_route_and_status,
    openapi_covers_every_route
);
