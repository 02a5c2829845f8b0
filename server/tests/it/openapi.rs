//! The OpenAPI description (`server/openapi.json`, served at `/api/openapi.json`) cannot drift
//! from the server: every server function is described and every described operation is served
//! with a documented status. The Schemathesis run in `scripts/test` then checks the answers'
//! bodies and headers against it in depth.

use std::collections::BTreeSet;

use crate::common::*;
use keycard_app::api::ErrorCode;
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn description(app: &TestApp) -> Value {
    let res = app.http.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_description_is_openapi_3_1_and_names_every_server_function() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |m| (path.clone(), m.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .filter(|(path, _)| !path.starts_with("/api/__probe/"))
        .map(|(path, method)| (path.to_owned(), method.to_string()))
        .collect();
    assert!(served.len() >= 14, "{served:?}");
    let missing: Vec<_> = served.difference(&described).collect();
    assert!(missing.is_empty(), "server functions missing from the description: {missing:?}");
    let extra: Vec<_> = described
        .iter()
        .filter(|(path, _)| path.starts_with("/api/") && path != "/api/openapi.json")
        .filter(|op| !served.contains(*op))
        .collect();
    assert!(extra.is_empty(), "described but not served: {extra:?}");
}

#[tokio::test]
async fn every_error_code_in_the_description_is_one_the_server_sends() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    let codes =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"].as_array().unwrap();
    for code in codes {
        let parsed: ErrorCode = serde_json::from_value(code.clone())
            .unwrap_or_else(|_| panic!("{code} is not an ErrorCode"));
        assert_ne!(parsed, ErrorCode::Network, "network is a client-side code only");
    }
    // And every code the server can send is in it.
    for code in ErrorCode::SENT_BY_SERVER {
        assert!(codes.contains(&Value::from(code.name())), "{} is not described", code.name());
    }
}

/// Every described operation, called with no credentials and no body, answers one of the
/// statuses described for it (never the router's own 404 or 405).
#[tokio::test]
async fn every_described_operation_is_served_with_a_described_status() {
    let app = spawn_app().await;
    let doc = description(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let url = app.url(&path.replace("{name}", "gym"));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app.http.request(method.clone(), url).send().await.unwrap();
            let status = res.status().as_u16().to_string();
            assert!(
                op["responses"].get(&status).is_some(),
                "{method} {path} answered {status}, which its description does not list"
            );
        }
    }
}
