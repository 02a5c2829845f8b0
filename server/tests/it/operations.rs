//! What the people who run Keycard see: the metrics listener (KEYCARD_METRICS_ADDR) after each
//! flow, the JSON log's security events (KEYCARD_LOG_FORMAT=json), liveness and readiness. On
//! the built server, a process of its own: its metrics recorder counts only this test's requests.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::*;

const NAME: &str = "metrics_ann";
const NEW_PASSWORD: &str = "another good password";

/// The value of the sample `series` (name and labels exactly as exported) in a scrape, if any.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The confirmation cookie's value in an answer.
fn confirmation_of(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Secure-confirmation="))
        .and_then(|c| c.split(';').next())
        .expect("a confirmation cookie")
        .to_owned()
}

#[tokio::test]
async fn the_metrics_listener_counts_every_flow_and_no_scrape_or_log_line_names_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let server = BuiltServer::start(
        dir.path(),
        &[
            ("KEYCARD_METRICS_ADDR", "127.0.0.1:0"),
            ("KEYCARD_LOG_FORMAT", "json"),
            ("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", "3"),
            ("RUST_LOG", "info"),
        ],
    );
    let metrics = server
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("Metrics at ").map(str::to_owned))
        .expect("the server says where its metrics are");
    let http = reqwest::Client::new();
    let post = |path: &str| http.post(server.url(path));
    let form = [("username", NAME), ("password", PASSWORD)];

    // A check-in (registration), a rotation, the same confirmation again (grace), another
    // rotation, then the first confirmation once more: a staged theft.
    let res = post("/api/auth/register").form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let first = confirmation_of(&res);
    let refresh = |confirmation: &str| {
        post("/api/auth/refresh").header("cookie", format!("__Secure-confirmation={confirmation}"))
    };
    let res = refresh(&first).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let second = confirmation_of(&res);
    let key_card: Value = res.json().await.unwrap();
    let key_card = key_card["access_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&first).send().await.unwrap().status(), 200, "the grace window");
    let res = refresh(&second).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let third = confirmation_of(&res);
    let theft = refresh(&first).send().await.unwrap();
    assert_eq!(theft.status(), 401);
    assert_eq!(refresh(&third).send().await.unwrap().status(), 401, "the booking is cancelled");
    // A second check-in, a new password and a check-out with its key card.
    let res = post("/api/auth/login").form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let second_stay: Value = res.json().await.unwrap();
    let second_card = second_stay["access_token"].as_str().unwrap().to_owned();
    let change = [("current_password", PASSWORD), ("new_password", NEW_PASSWORD)];
    let res = post("/api/auth/password").bearer_auth(&second_card).form(&change).send().await;
    assert_eq!(res.unwrap().status(), 200);
    let res = post("/api/auth/logout").bearer_auth(&second_card).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // A wrong password, then the account's throttle (3 a minute: registration, the second
    // check-in and this one).
    let wrong = [("username", NAME), ("password", "not the password")];
    assert_eq!(post("/api/auth/login").form(&wrong).send().await.unwrap().status(), 401);
    let mut throttled = false;
    for _ in 0..3 {
        let status = post("/api/auth/login").form(&wrong).send().await.unwrap().status();
        throttled |= status == 429;
    }
    assert!(throttled, "the account throttle answered 429");
    // A path no route has: timed as `unmatched`, never by its own name.
    let made_up = "/made-up-path-f00d";
    assert_eq!(http.get(server.url(made_up)).send().await.unwrap().status(), 404);

    let scrape = http.get(&metrics).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let content_type = scrape.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let scrape = scrape.text().await.unwrap();
    let at_least = |series: &str, least: f64| {
        let value = sample(&scrape, series).unwrap_or_else(|| panic!("no {series} in\n{scrape}"));
        assert!(value >= least, "{series} = {value}, expected at least {least}");
    };
    at_least(r#"keycard_check_ins_total{outcome="checked_in"}"#, 2.0);
    at_least(r#"keycard_check_ins_total{outcome="refused"}"#, 1.0);
    at_least(r#"keycard_check_ins_total{outcome="throttled"}"#, 1.0);
    at_least(r#"keycard_rotations_total{outcome="rotated"}"#, 2.0);
    at_least(r#"keycard_rotations_total{outcome="grace"}"#, 1.0);
    at_least(r#"keycard_rotations_total{outcome="refused"}"#, 1.0);
    assert_eq!(sample(&scrape, "keycard_reuse_detected_total"), Some(1.0));
    assert_eq!(sample(&scrape, r#"keycard_revocations_total{scope="theft"}"#), Some(1.0));
    assert_eq!(sample(&scrape, r#"keycard_revocations_total{scope="check_out"}"#), Some(1.0));
    assert_eq!(sample(&scrape, r#"keycard_revocations_total{scope="other_bookings"}"#), Some(0.0));
    at_least(r#"keycard_throttled_total{route="check_in_account"}"#, 1.0);
    at_least(r#"keycard_password_hash_seconds_count{operation="hash"}"#, 1.0);
    at_least(r#"keycard_password_hash_seconds_count{operation="verify"}"#, 1.0);
    at_least(
        r#"http_request_duration_seconds_count{route="/api/auth/refresh",method="POST",status="200"}"#,
        3.0,
    );
    at_least(
        r#"http_request_duration_seconds_count{route="unmatched",method="GET",status="404"}"#,
        1.0,
    );
    at_least(r#"keycard_db_connections{state="idle"}"#, 0.0);
    at_least(r#"keycard_db_connections{state="in_use"}"#, 0.0);
    assert_eq!(sample(&scrape, r#"keycard_build_info{version="0.1.0"}"#), Some(1.0));
    assert_eq!(sample(&scrape, "keycard_database_up"), Some(1.0));
    assert!(scrape.contains("# HELP keycard_reuse_detected_total"), "families are described");
    for secret in [
        NAME,
        PASSWORD,
        NEW_PASSWORD,
        "not the password",
        &first,
        &third,
        &key_card,
        &second_card,
        made_up,
    ] {
        assert!(!scrape.contains(secret), "{secret:?} in the scrape");
    }
    assert!(!scrape.contains("127.0.0.1"), "no address in the scrape");

    // The public listener has no /metrics; liveness and readiness answer there.
    assert_eq!(http.get(server.url("/metrics")).send().await.unwrap().status(), 404);
    for path in ["/healthz/live", "/healthz/ready", "/healthz"] {
        assert_eq!(http.get(server.url(path)).send().await.unwrap().status(), 200, "{path}");
    }

    // The log: one JSON object a line; the security events name bookings and guests only.
    let log = server.log();
    let mut events: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.starts_with('{')) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if entry["target"] == "keycard::security" {
            events.entry(entry["event"].as_str().unwrap().to_owned()).or_default().push(entry);
        }
        for secret in [
            NAME,
            PASSWORD,
            NEW_PASSWORD,
            "not the password",
            &first,
            &second,
            &third,
            &key_card,
            &second_card,
        ] {
            assert!(!line.contains(secret), "{secret:?} logged: {line}");
        }
    }
    let check_in = &events["check_in"][0];
    let booking = check_in["booking"].as_str().unwrap();
    assert!(!booking.is_empty() && !check_in["guest"].as_str().unwrap().is_empty());
    assert!(check_in["timestamp"].is_string() && check_in["level"] == "INFO", "{check_in}");
    let reuse = &events["reuse_detected"][0];
    assert_eq!((reuse["booking"].as_str(), reuse["level"].as_str()), (Some(booking), Some("WARN")));
    let revocation = &events["revocation"][0];
    assert_eq!(
        (revocation["scope"].as_str(), revocation["booking"].as_str()),
        (Some("theft"), Some(booking))
    );
    assert!(!events["check_in_refused"].is_empty());
    assert_eq!(events["check_in"].len(), 2, "registration and the second check-in");
    let changed = &events["password_changed"][0];
    assert_eq!(changed["guest"], check_in["guest"]);
    let check_out = events["revocation"].iter().find(|e| e["scope"] == "check_out").unwrap();
    assert_eq!(check_out["booking"], events["check_in"][1]["booking"]);
    assert!(
        !events["rotation_refused"].is_empty(),
        "the guest's own confirmation, after the theft"
    );
}
