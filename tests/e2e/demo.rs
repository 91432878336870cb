//! `chorus demo` at a small size: the whole scenario on its own nats-server and SQLite,
//! and the report it reads back from the API.

use crate::harness::{nats_server_bin, spans};
use opentelemetry::Value;
use std::time::Duration;

fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| match &attribute.value {
            Value::String(text) => text.to_string(),
            other => other.to_string(),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_reports_every_network_its_faults_and_the_program() {
    // The test's tracer provider records every span, the demo's traced share among them.
    spans();
    let data_dir = tempfile::tempdir().unwrap();
    let config = chorus_kit::Config {
        data_dir: data_dir.path().to_path_buf(),
        nats_server_bin: nats_server_bin(),
        ..Default::default()
    };
    let options = chorus::demo::DemoOptions {
        advocates: 12,
        keep_running: false,
        schedule_over: Duration::from_secs(4),
        traces: None,
    };
    let report = tokio::time::timeout(Duration::from_secs(120), chorus::demo::run(config, options))
        .await
        .expect("the demo finishes")
        .expect("the demo succeeds");
    let text = report.render();

    assert_eq!(report.advocates, 12);
    assert_eq!(report.summary.advocates, 12, "{text}");
    for network in ["linkedin", "x", "facebook", "mastodon", "bluesky"] {
        let outcome = &report.outcomes[network];
        assert!(outcome.shares > 0, "{network} has shares:\n{text}");
        assert!(report.accounts[network] > 0, "{network} has accounts");
        assert_eq!(
            outcome.pending, 0,
            "{network}: every share is final:\n{text}"
        );
        assert!(text.contains(network), "{network} in the report");
    }
    let total = report.total();
    assert!(total.published > 0, "{text}");
    assert_eq!(
        total.published + total.failed + total.needs_reconnect + total.cancelled,
        total.shares,
        "{text}"
    );
    assert_eq!(
        report.summary.figures.shares, total.published as i64,
        "{text}"
    );

    // LinkedIn's three 503s were retried and its shares all published.
    let linkedin = &report.outcomes["linkedin"];
    assert!(linkedin.retried >= 3, "{text}");
    assert_eq!(linkedin.published, linkedin.shares, "{text}");
    // Facebook's missing permission: a permanent failure in Graph's words.
    let facebook = &report.outcomes["facebook"];
    assert_eq!(facebook.failed, 1, "{text}");
    assert!(
        facebook
            .reasons
            .keys()
            .any(|reason| reason.starts_with("failed:") && reason.contains("pages_manage_posts")),
        "{:?}",
        facebook.reasons
    );
    assert!(text.contains("pages_manage_posts"), "{text}");
    // X's 429: a wait for the window, then published.
    let x = &report.outcomes["x"];
    assert!(x.rate_limited >= 1, "{text}");
    assert!(x.limit_wait_secs >= 3.0, "{text}");
    assert_eq!(x.published, x.shares, "{text}");
    // The revoked Mastodon token: the account needs reconnecting.
    let mastodon = &report.outcomes["mastodon"];
    assert!(mastodon.needs_reconnect >= 1, "{text}");
    assert!(
        mastodon
            .reasons
            .keys()
            .any(|reason| reason.starts_with("needs reconnect:")),
        "{:?}",
        mastodon.reasons
    );
    let bluesky = &report.outcomes["bluesky"];
    assert!(bluesky.retried >= 1, "{text}");
    assert_eq!(bluesky.published, bluesky.shares, "{text}");

    // The program: clicks and reactions arrived, points, badges and notifications followed.
    let figures = &report.summary.figures;
    assert!(figures.clicks > 0, "{text}");
    assert!(figures.bot_clicks > 0, "{text}");
    assert!(figures.reactions > 0, "{text}");
    assert!(figures.comments + figures.reshares > 0, "{text}");
    assert!(!report.phases.is_empty(), "{text}");
    assert!(report.summary.potential_reach > 0, "{text}");
    assert!(report.summary.emv.value > 0.0, "{text}");
    assert_eq!(report.summary.emv.currency, "EUR");
    assert!(!report.leaderboard.top.is_empty(), "{text}");
    assert!(report.leaderboard.top[0].points > 0, "{text}");
    let contest = report.contest.as_ref().expect("a contest");
    assert_eq!(
        contest.status,
        chorus_api::gamification::ContestStatus::Running
    );
    assert!(
        report.badges.get("first_share").copied().unwrap_or(0) > 0,
        "{text}"
    );
    assert!(
        report
            .notifications
            .get("share_published")
            .copied()
            .unwrap_or(0)
            > 0,
        "{text}"
    );
    assert!(
        report
            .notifications
            .get("account_needs_reconnect")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{text}"
    );
    assert!(report.by_network.len() >= 4, "{text}");

    // The printed trace id is the trace of that share's publication.
    let trace = report.trace.as_ref().expect("a traced share");
    assert!(text.contains(&trace.trace_id), "{text}");
    assert!(text.contains(&report.docs_url), "{text}");
    let publish_spans: Vec<_> = spans()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|span| {
            span.name == "publish"
                && attribute(span, "share_id").as_deref() == Some(trace.share_id.as_str())
        })
        .collect();
    assert!(!publish_spans.is_empty(), "the traced share was published");
    for span in &publish_spans {
        assert_eq!(span.span_context.trace_id().to_string(), trace.trace_id);
    }
}
