//! E-mail, Slack and Teams notifications end to end: a domain event reaches a local SMTP
//! server as a localised multipart e-mail and local Slack and Teams receivers as their
//! exact JSON; preferences and quiet hours decide what goes where; a failing channel is
//! retried without holding back the others; a refused address is a visible failure; one
//! tenant's channels never see another's notifications.

use crate::harness::{Backend, Harness, eventually};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_api::notifications::{
    ChannelDeliveries, Device, Devices, DigestFrequency, Inbox, NotificationPreferences,
    TeamChannel, TeamChannels,
};
use chorus_kit::Role;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One e-mail as the SMTP server received it.
#[derive(Clone, Debug)]
struct Mail {
    to: Vec<String>,
    data: String,
}

impl Mail {
    fn header(&self, name: &str) -> String {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
            .unwrap_or_default()
    }

    /// The decoded body of the part with this content type.
    fn part(&self, content_type: &str) -> String {
        let start = self
            .data
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part in {}", self.data));
        let rest = &self.data[start..];
        let body_start = rest.find("\r\n\r\n").unwrap() + 4;
        let body_end = rest[body_start..].find("\r\n--").unwrap() + body_start;
        let encoded: String = rest[body_start..body_end]
            .chars()
            .filter(|character| !character.is_whitespace())
            .collect();
        String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap()
    }
}

/// A local SMTP server (enough of RFC 5321 for a client): refuses recipients whose address
/// contains `bounce` with 550.
#[derive(Clone, Default)]
struct SmtpServer {
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    async fn start() -> (SmtpServer, String) {
        let server = SmtpServer::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mails = server.mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let mails = mails.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 smtp.test ESMTP\r\n").await;
                    let mut to = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-smtp.test\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("MAIL FROM") || upper.starts_with("HELO") {
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO") {
                            if line.contains("bounce") {
                                b"550 5.1.1 mailbox unavailable\r\n"
                            } else {
                                to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                                b"250 OK\r\n"
                            }
                        } else if upper == "DATA" {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                                data.push_str("\r\n");
                            }
                            mails.lock().unwrap().push(Mail {
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper == "RSET" {
                            to.clear();
                            b"250 OK\r\n"
                        } else if upper == "NOOP" {
                            b"250 OK\r\n"
                        } else if upper == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"500 unknown command\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (server, url)
    }

    fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|mail| mail.to.iter().any(|to| to == address))
            .cloned()
            .collect()
    }

    async fn wait_for(&self, address: &str, count: usize) -> Vec<Mail> {
        eventually(
            Duration::from_secs(30),
            &format!("{count} e-mail(s) to {address}"),
            || async {
                let mails = self.mails_to(address);
                (mails.len() >= count).then_some(mails)
            },
        )
        .await
    }
}

/// A local Slack or Teams incoming webhook: answers 500 to its first `failures` requests.
#[derive(Clone)]
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start(failures: usize) -> Hook {
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/T0/B0/secret",
            listener.local_addr().unwrap()
        );
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/services/T0/B0/secret",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body);
                    if seen.len() <= failures {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hook { url, got }
    }

    fn requests(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize, what: &str) -> Vec<Value> {
        eventually(Duration::from_secs(30), what, || async {
            let got = self.requests();
            (got.len() >= count).then_some(got)
        })
        .await
    }
}

async fn grant(harness: &Harness, admin: &str, user: &str, badge: &str, title: &str) {
    let _: Value = harness
        .api
        .post(
            "/v1/badges",
            admin,
            json!({"user_id": user, "badge": badge, "title": title}),
        )
        .await
        .unwrap();
}

async fn deliveries(harness: &Harness, token: &str) -> ChannelDeliveries {
    harness
        .api
        .get("/v1/me/notification-deliveries", token)
        .await
        .unwrap()
}

async fn channels_on(backend: Backend) {
    let (smtp, smtp_url) = SmtpServer::start().await;
    let harness = Harness::start_with(backend, &[], |config| {
        config.notifications.smtp_url = Some(smtp_url.clone().into());
        config.notifications.email_from = "Acme Advocacy <advocacy@acme.example>".into();
        config.notifications.channel_retry_schedule_ms = vec![300, 600];
    })
    .await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice", "bob"]).await;
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "lea", "display_name": "Léa Martin", "email": "lea@acme.example",
                   "roles": ["advocate"], "language": "fr", "time_zone": "Europe/Paris"}),
        )
        .await
        .unwrap();
    let _: Value = api
        .post(
            "/v1/users",
            &admin,
            json!({"id": "ghost", "display_name": "Ghost", "email": "bounce@acme.example",
                   "roles": ["advocate"]}),
        )
        .await
        .unwrap();
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let lea = harness.token("acme", "lea", &[Role::Advocate]);
    let ghost = harness.token("acme", "ghost", &[Role::Advocate]);

    // Defaults: urgent and personal news by e-mail too, frequent small news in the inbox.
    let preferences: NotificationPreferences = api
        .get("/v1/me/notification-preferences", &alice)
        .await
        .unwrap();
    assert!(preferences.email_available);
    let kind = |preferences: &NotificationPreferences, name: &str| {
        preferences
            .items
            .iter()
            .find(|item| item.kind == name)
            .cloned()
            .unwrap()
    };
    assert!(kind(&preferences, "badge_earned").email);
    assert!(kind(&preferences, "share_failed").email);
    assert!(!kind(&preferences, "points_awarded").email);
    assert!(kind(&preferences, "points_awarded").in_app);
    assert_eq!(preferences.quiet_hours, None);

    // Bad preferences are refused with the field named, and change nothing.
    for (body, says) in [
        (
            json!({"items": [{"kind": "gossip", "in_app": true, "email": true}]}),
            "gossip",
        ),
        (
            json!({"items": [], "quiet_hours": {"start": "25:00", "end": "07:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"items": [], "time_zone": "Mars/Olympus_Mons"}),
            "time_zone",
        ),
    ] {
        let refused = api
            .send::<Value>(
                reqwest::Method::PUT,
                "/v1/me/notification-preferences",
                &alice,
                Some(body),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{}",
            refused.body
        );
    }

    // A badge for Léa: one e-mail, multipart text and HTML, framed in French.
    grant(&harness, &admin, "lea", "first_share", "Premier partage").await;
    let mail = smtp.wait_for("lea@acme.example", 1).await.remove(0);
    assert!(
        mail.header("From").contains("Acme Advocacy"),
        "{}",
        mail.header("From")
    );
    assert!(mail.header("From").ends_with("<advocacy@acme.example>"));
    assert!(
        mail.header("To").contains("<lea@acme.example>"),
        "{}",
        mail.header("To")
    );
    assert_eq!(
        mail.header("Subject"),
        "Vous avez obtenu le badge Premier partage"
    );
    assert!(
        mail.header("Content-Type")
            .starts_with("multipart/alternative")
    );
    assert!(mail.header("Message-ID").ends_with("@chorus>"));
    let text = mail.part("text/plain");
    assert!(
        text.starts_with("Bonjour Léa Martin,\n\nVous avez obtenu le badge Premier partage\n"),
        "{text}"
    );
    assert!(
        text.contains("Merci de partager : retrouvez vos badges dans votre profil."),
        "the message itself is in French: {text}"
    );
    assert!(text.contains("Ouvrir Chorus: "), "{text}");
    assert!(text.contains("Paramètres › Notifications"), "{text}");
    let html = mail.part("text/html");
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("<p>Bonjour Léa Martin,</p>"), "{html}");
    let sent = eventually(
        Duration::from_secs(10),
        "the e-mail is recorded as sent",
        || async {
            let list = deliveries(&harness, &lea).await;
            list.items
                .first()
                .is_some_and(|item| item.status == "sent")
                .then_some(list)
        },
    )
    .await;
    assert_eq!(sent.items.len(), 1);
    assert_eq!(sent.items[0].channel, "email");
    assert_eq!(sent.items[0].status, "sent");
    assert!(sent.items[0].sent_at.is_some());

    // Alice turns badge e-mails off: her badge reaches the inbox only; bob's reaches him.
    let changed: NotificationPreferences = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/notification-preferences",
            &alice,
            Some(
                json!({"items": [{"kind": "badge_earned", "in_app": true, "email": false}],
                        "digest": "daily", "time_zone": "Europe/Paris"}),
            ),
        )
        .await
        .unwrap();
    assert!(!kind(&changed, "badge_earned").email);
    assert_eq!(changed.digest, Some(DigestFrequency::Daily));
    assert!(
        kind(&changed, "share_failed").email,
        "other kinds keep theirs"
    );
    grant(&harness, &admin, "alice", "storyteller", "Storyteller").await;
    grant(&harness, &admin, "bob", "storyteller", "Storyteller").await;
    smtp.wait_for("bob@example.com", 1).await;
    let inbox: Inbox = api.get("/v1/me/notifications", &alice).await.unwrap();
    assert!(
        inbox
            .items
            .iter()
            .any(|item| item.title.contains("Storyteller"))
    );
    assert!(smtp.mails_to("alice@example.com").is_empty());
    assert!(deliveries(&harness, &alice).await.items.is_empty());

    // Her daily digest (08:00 in Paris, brought forward here) lists what did not go by
    // e-mail: the badge.
    let db = sea_orm::Database::connect(harness.config.database_url("notifications"))
        .await
        .unwrap();
    let bring_forward = Query::update()
        .table(Alias::new("notification_quiet_hours"))
        .value(
            Alias::new("digest_next_at"),
            chrono::Utc::now() - chrono::TimeDelta::seconds(1),
        )
        .and_where(Expr::col(Alias::new("user_id")).eq("alice"))
        .to_owned();
    db.execute_raw(db.get_database_backend().build(&bring_forward))
        .await
        .unwrap();
    let digest = smtp.wait_for("alice@example.com", 1).await.remove(0);
    assert_eq!(digest.header("Subject"), "Your Chorus digest: 1 update");
    let text = digest.part("text/plain");
    assert!(
        text.contains("• You earned the badge Storyteller"),
        "{text}"
    );
    let html = digest.part("text/html");
    assert!(
        html.contains("• You earned the badge Storyteller"),
        "{html}"
    );
    let listed = deliveries(&harness, &alice).await;
    assert_eq!(listed.items[0].kind, "digest");
    db.close().await.ok();

    // Quiet hours around now: bob's e-mail waits (pending, due when they end) and goes out
    // once he moves them.
    let now = chrono::Utc::now();
    let window = |from: chrono::TimeDelta, to: chrono::TimeDelta| {
        json!({"items": [], "time_zone": "UTC",
               "quiet_hours": {"start": (now + from).format("%H:%M").to_string(),
                               "end": (now + to).format("%H:%M").to_string()}})
    };
    let _: NotificationPreferences = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/notification-preferences",
            &bob,
            Some(window(
                chrono::TimeDelta::hours(-1),
                chrono::TimeDelta::hours(1),
            )),
        )
        .await
        .unwrap();
    grant(&harness, &admin, "bob", "connector", "Connector").await;
    let held = eventually(Duration::from_secs(30), "bob's e-mail is held", || async {
        let list = deliveries(&harness, &bob).await;
        list.items.into_iter().find(|item| {
            item.status == "pending"
                && item
                    .next_attempt_at
                    .is_some_and(|at| at > chrono::Utc::now() + chrono::TimeDelta::minutes(30))
        })
    })
    .await;
    assert_eq!(held.kind, "badge_earned");
    assert_eq!(
        smtp.mails_to("bob@example.com").len(),
        1,
        "nothing during quiet hours"
    );
    let _: NotificationPreferences = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/notification-preferences",
            &bob,
            Some(window(
                chrono::TimeDelta::hours(2),
                chrono::TimeDelta::hours(3),
            )),
        )
        .await
        .unwrap();
    let mails = smtp.wait_for("bob@example.com", 2).await;
    assert_eq!(mails[1].header("Subject"), "You earned the badge Connector");

    // The server refuses an address: the delivery fails visibly with its answer, no retry.
    grant(&harness, &admin, "ghost", "first_share", "First share").await;
    let failed = eventually(
        Duration::from_secs(30),
        "the bounce is recorded",
        || async {
            deliveries(&harness, &ghost)
                .await
                .items
                .into_iter()
                .find(|item| item.status == "failed")
        },
    )
    .await;
    assert_eq!(failed.attempts, 1);
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("550"),
        "{failed:?}"
    );

    // Team channels: admins only, private destinations refused until allowed.
    let slack = Hook::start(1).await;
    let teams = Hook::start(0).await;
    let channel = |kind: &str, url: &str| json!({"type": kind, "name": "#social-team", "url": url, "kinds": ["badge_earned"]});
    let refused = api
        .post::<Value>(
            "/v1/notification-channels",
            &alice,
            channel("slack", &slack.url),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    let refused = api
        .post::<Value>(
            "/v1/notification-channels",
            &admin,
            channel("slack", &slack.url),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422, "{}", refused.body);
    let refused = api
        .post::<Value>(
            "/v1/notification-channels",
            &admin,
            json!({"type": "slack", "name": "x", "url": "https://hooks.slack.com/x", "kinds": ["gossip"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let _: Value = api
        .send(
            reqwest::Method::PUT,
            "/v1/webhooks/settings",
            &admin,
            Some(json!({"allow_private_destinations": true})),
        )
        .await
        .unwrap();
    let on_slack: TeamChannel = api
        .post(
            "/v1/notification-channels",
            &admin,
            channel("slack", &slack.url),
        )
        .await
        .unwrap();
    let on_teams: TeamChannel = api
        .post(
            "/v1/notification-channels",
            &admin,
            channel("teams", &teams.url),
        )
        .await
        .unwrap();
    assert_eq!(on_slack.host, "127.0.0.1");
    let listed: TeamChannels = api.get("/v1/notification-channels", &admin).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    assert!(
        !serde_json::to_string(&listed).unwrap().contains("secret"),
        "the URL is not shown again"
    );

    // Another tenant sees none of them and cannot remove them; its news never reaches them.
    let other = harness.tenant("globex", &["gina"]).await;
    let theirs: TeamChannels = api.get("/v1/notification-channels", &other).await.unwrap();
    assert!(theirs.items.is_empty());
    let refused = api
        .send::<Value>(
            reqwest::Method::DELETE,
            &format!("/v1/notification-channels/{}", on_slack.id),
            &other,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 404);
    grant(&harness, &other, "gina", "first_share", "Globex badge").await;

    // One badge: Slack fails once and is retried; Teams and the e-mail are not held back.
    grant(&harness, &admin, "lea", "connector", "Connector").await;
    let posted = teams.wait_for(1, "the Teams card").await;
    assert_eq!(
        posted[0],
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": "Vous avez obtenu le badge Connector", "weight": "Bolder", "size": "Medium", "wrap": true},
                        {"type": "TextBlock", "text": posted[0]["attachments"][0]["content"]["body"][1]["text"], "wrap": true}
                    ]
                }
            }]
        })
    );
    smtp.wait_for("lea@acme.example", 2).await;
    let posted = slack.wait_for(2, "the Slack message, retried").await;
    assert_eq!(posted[0], posted[1], "the retry sends the same message");
    assert_eq!(
        posted[1]["blocks"][0]["text"]["text"],
        "Vous avez obtenu le badge Connector"
    );
    assert_eq!(posted[1]["blocks"][0]["type"], "header");
    assert_eq!(posted[1]["blocks"][1]["type"], "section");
    assert!(
        posted[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Vous avez obtenu le badge Connector: ")
    );
    let history = eventually(
        Duration::from_secs(10),
        "the Slack retry is recorded",
        || async {
            let list: ChannelDeliveries = api
                .get(
                    &format!("/v1/notification-channels/{}/deliveries", on_slack.id),
                    &admin,
                )
                .await
                .unwrap();
            (list.items.first().is_some_and(|item| item.status == "sent")).then_some(list)
        },
    )
    .await;
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].attempts, 2);

    // Nothing arrives twice, and nothing of Globex's arrived at all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(slack.requests().len(), 2);
    assert_eq!(teams.requests().len(), 1);
    assert_eq!(smtp.mails_to("lea@acme.example").len(), 2);
    assert!(
        !format!("{:?}{:?}", slack.requests(), teams.requests()).contains("Globex"),
        "another tenant's news"
    );

    // A removed channel receives nothing more.
    let _: Value = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/notification-channels/{}", on_teams.id),
            &admin,
            None,
        )
        .await
        .unwrap();
    grant(&harness, &admin, "bob", "early_bird", "Early bird").await;
    slack.wait_for(3, "the next Slack message").await;
    assert_eq!(teams.requests().len(), 1);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_slack_and_teams_follow_preferences_and_retry_alone() {
    channels_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_slack_and_teams_on_postgres() {
    channels_on(Backend::Postgres).await;
}

// Keys made for this test only (openssl genpkey): an RSA key as in a Firebase service
// account, and a P-256 key as in an APNs AuthKey_<id>.p8.
const FCM_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCfV8ssF5++ZI0q\nXkPP6j838K6jVhq71GHBTJDGW1C2tUg5TlTXUJRo5NhxNVm39vC2Ypb3DzQWHsVD\nuchoffPk1Bn1yRqWHqvRfgnTJVKi1xBjtBiuBgCxrseGZNeZ/qqyN7m4BNAYKopg\nRWhftYr7mRtJQvyxkXQ41ZYYp/a/Zp3bGGR7fBdixsdRXj2YP3U8q0qBjonRns1M\nyTYm+4Y2PR3uF67Q8K0Dv/thoPR7zdxm8kglVymwU7zwavfGzjZ19hb0I+ItLxPC\n1NPAIRWs6Rm3UtpLB5symZs6NoAI1FBaghecV+aVz8s0MntDeCCkm49Q6l2fCbYl\ndn8C7sO7AgMBAAECggEADf+AccHW3rr79m+MNYUL7gt5drqRuVPRt/wp8RhZ4Yh7\nbSKx1q3VhoF+zN3gS9uoZIgKCxo4JoP9gGhJxXmLJjHGi2O8r4NyRK0gin604RP+\nSe6rBwlaoOwMddoAtsk7OvzPlphAT7SCWNgVcJME6qVrUub3nAHTMUr810hU0kDl\n/j6iGIYED8UMgpIGFfnFybFzWynlUFkquiEUUTUsOSp67C4hhlNXGBK/4y2fkUlo\nYWwp5x5gjciS4wYMxeK4ksYfZHIbzQht3HSur0+sCiS84/nNXhiKBmr5qajd7Wpu\nIUc6Sw4AwHI7YiXjcoZEWmSnHtLIYoMACdAhxrR9QQKBgQDXSm13fjUwOeoHaX9O\nzkZeb3hKhd5AarBdn3FWqtJdldwpvIMHx3aUMt2x5uTdtzUOWmRM+KGCFC1EZ2nE\nZQJJPZBcTVmaLWyi5lWiziNDrSGlKPtDCGPPXQBy8DBzopFwNeGMB/dLaDItHXCj\nZnyKHlsYfBJ+kv4B97xKBWoa7QKBgQC9eRpensTcd8hm38EkQ/3IgfBf0owZwR1f\nhe0bgAHoE+1IFatIkq/s6RwItkAtG7R6F3+av0D+OH+btcimddulmEM/GjbD0++5\nzcyZOxsT2GDQTNRFNkhe6Woy340A2wpG5mAARd5co/AXyaC/5J0ih7+gS85rrUYM\nEIz9UAD8RwKBgG26zp534i4pZoHOoIePFUiusfXx0zyr5CZjzMWqnTv71NIk9ffy\nDxsr7djt4TqsVUtygOrGUrNVC1lxB/SEsyyXR0v0VLYDbvp8QauQO2MUDDD8+UvK\nK+0V7tOmXluhwVUa8VGJAd8aRXC/L5jo9JMFM9L/8gE3dGWWWg60QcdlAoGAYfhf\nkTNpOVJadg8WkEjzzZyajQGSXbLEHGNkkcajtbuwAojp0xG+E7MJQtvx3SEpNcQ2\nv+5Kjejq2rmpMaFZXIuZoeRNEv7gQuPN+iFcw+srTCmdzNffnev1dK6w+xNHgheW\n5i06aA6Ak9w22WI9eeBVTm5EItsqkAxyynx2tfsCgYA6IUUY8W0ZQqfldYHIf6t+\nkn/WYeAgsl4RLM3h66cKZ2XvZTmFyiTKYhjI4YWOmAjyyOwz4WtY1O43T/oFKhFw\nrp95aqTC9ryNEzfKY8U0RXaPxIfPTg4AjYRZRQxRNVtTpKVcuI1AVKcdPfEh0K5r\nMrvyoPDEkkoEm3xhsqVj+w==\n-----END PRIVATE KEY-----\n";
const FCM_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAn1fLLBefvmSNKl5Dz+o/\nN/Cuo1Yau9RhwUyQxltQtrVIOU5U11CUaOTYcTVZt/bwtmKW9w80Fh7FQ7nIaH3z\n5NQZ9ckalh6r0X4J0yVSotcQY7QYrgYAsa7HhmTXmf6qsje5uATQGCqKYEVoX7WK\n+5kbSUL8sZF0ONWWGKf2v2ad2xhke3wXYsbHUV49mD91PKtKgY6J0Z7NTMk2JvuG\nNj0d7heu0PCtA7/7YaD0e83cZvJIJVcpsFO88Gr3xs42dfYW9CPiLS8TwtTTwCEV\nrOkZt1LaSwebMpmbOjaACNRQWoIXnFfmlc/LNDJ7Q3ggpJuPUOpdnwm2JXZ/Au7D\nuwIDAQAB\n-----END PUBLIC KEY-----\n";
const APNS_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg65bOtndunL0Hfg8c\nCmaGjNZnVOWfHPABB4nBG2wjVLyhRANCAARTWOnp2Fpej2KG23+FvK9UrHPjwjvl\nUMYoOad5XY8mQBu8m8f0yE2uK6k0CBNHV8SZBpFkDK7N5AJRYPtKySuI\n-----END PRIVATE KEY-----\n";
const APNS_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU1jp6dhaXo9ihtt/hbyvVKxz48I7\n5VDGKDmneV2PJkAbvJvH9MhNriupNAgTR1fEmQaRZAyuzeQCUWD7SskriA==\n-----END PUBLIC KEY-----\n";

/// What the local FCM and APNs receivers saw.
#[derive(Default)]
struct PushLog {
    token_requests: usize,
    fcm: Vec<Value>,
    apns: Vec<(String, Value)>,
}

/// Local FCM (OAuth token endpoint and HTTP v1 send) and APNs (HTTP/2) receivers that verify
/// what Chorus signs with the public keys.
async fn push_receivers(log: Arc<Mutex<PushLog>>) -> (String, String) {
    use axum::extract::{Form, Path};
    use axum::http::{HeaderMap, StatusCode, Version};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let fcm_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fcm_base = format!("http://{}", fcm_listener.local_addr().unwrap());
    let token_uri = format!("{fcm_base}/token");
    let fcm = {
        let (token_log, send_log) = (log.clone(), log.clone());
        axum::Router::new()
            .route(
                "/token",
                axum::routing::post(move |Form(form): Form<std::collections::HashMap<String, String>>| {
                    let log = token_log.clone();
                    let token_uri = token_uri.clone();
                    async move {
                        assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
                        let mut validation = Validation::new(Algorithm::RS256);
                        validation.set_audience(&[token_uri.as_str()]);
                        let claims = jsonwebtoken::decode::<Value>(
                            &form["assertion"],
                            &DecodingKey::from_rsa_pem(FCM_PUBLIC_KEY.as_bytes()).unwrap(),
                            &validation,
                        )
                        .expect("the assertion is signed with the service account's key")
                        .claims;
                        assert_eq!(claims["iss"], "chorus@chorus-test.iam.gserviceaccount.com");
                        assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
                        log.lock().unwrap().token_requests += 1;
                        axum::Json(json!({"access_token": "ya29.local", "expires_in": 3599, "token_type": "Bearer"}))
                    }
                }),
            )
            .route(
                "/v1/projects/chorus-test/messages:send",
                axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                    let log = send_log.clone();
                    async move {
                        assert_eq!(headers["authorization"], "Bearer ya29.local");
                        log.lock().unwrap().fcm.push(body);
                        axum::Json(json!({"name": "projects/chorus-test/messages/0:1"}))
                    }
                }),
            )
    };
    tokio::spawn(async move { axum::serve(fcm_listener, fcm).await });
    let apns_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let apns_base = format!("http://{}", apns_listener.local_addr().unwrap());
    let apns = axum::Router::new().route(
        "/3/device/{token}",
        axum::routing::post(
            move |Path(token): Path<String>,
                  version: Version,
                  headers: HeaderMap,
                  axum::Json(body): axum::Json<Value>| {
                let log = log.clone();
                async move {
                    assert_eq!(version, Version::HTTP_2, "APNs is HTTP/2 only");
                    let bearer = headers["authorization"]
                        .to_str()
                        .unwrap()
                        .strip_prefix("bearer ")
                        .unwrap()
                        .to_string();
                    let header = jsonwebtoken::decode_header(&bearer).unwrap();
                    assert_eq!(header.alg, Algorithm::ES256);
                    assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
                    let mut validation = Validation::new(Algorithm::ES256);
                    validation.required_spec_claims.clear();
                    validation.validate_exp = false;
                    let claims = jsonwebtoken::decode::<Value>(
                        &bearer,
                        &DecodingKey::from_ec_pem(APNS_PUBLIC_KEY.as_bytes()).unwrap(),
                        &validation,
                    )
                    .expect("the provider token is signed with the APNs key")
                    .claims;
                    assert_eq!(claims["iss"], "TEAM123456");
                    assert_eq!(headers["apns-topic"], "com.acme.chorus");
                    assert_eq!(headers["apns-push-type"], "alert");
                    assert!(uuid::Uuid::parse_str(headers["apns-id"].to_str().unwrap()).is_ok());
                    log.lock().unwrap().apns.push((token.clone(), body));
                    if token.starts_with("dead") {
                        (
                            StatusCode::GONE,
                            axum::Json(
                                json!({"reason": "Unregistered", "timestamp": 1764400000000u64}),
                            ),
                        )
                    } else {
                        (StatusCode::OK, axum::Json(json!({})))
                    }
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(apns_listener, apns).await });
    (fcm_base, apns_base)
}

async fn push_on(backend: Backend) {
    let log: Arc<Mutex<PushLog>> = Arc::default();
    let (fcm_base, apns_base) = push_receivers(log.clone()).await;
    let keys = tempfile::tempdir().unwrap();
    let account = keys.path().join("service-account.json");
    std::fs::write(
        &account,
        json!({"type": "service_account", "project_id": "chorus-test",
               "client_email": "chorus@chorus-test.iam.gserviceaccount.com",
               "private_key": FCM_PRIVATE_KEY, "token_uri": format!("{fcm_base}/token")})
        .to_string(),
    )
    .unwrap();
    let apns_key = keys.path().join("AuthKey_KEY1234567.p8");
    std::fs::write(&apns_key, APNS_PRIVATE_KEY).unwrap();
    let harness = Harness::start_with(backend, &[], |config| {
        config.notifications.fcm_project_id = Some("chorus-test".into());
        config.notifications.fcm_service_account_file = Some(account.clone());
        config.notifications.fcm_endpoint = fcm_base.clone();
        config.notifications.apns_team_id = Some("TEAM123456".into());
        config.notifications.apns_key_id = Some("KEY1234567".into());
        config.notifications.apns_key_file = Some(apns_key.clone());
        config.notifications.apns_topic = Some("com.acme.chorus".into());
        config.notifications.apns_endpoint = apns_base.clone();
    })
    .await;
    let api = &harness.api;
    let admin = harness.tenant("acme", &["alice", "bob"]).await;
    let alice = harness.token("acme", "alice", &[Role::Advocate]);
    let bob = harness.token("acme", "bob", &[Role::Advocate]);
    let preferences: NotificationPreferences = api
        .get("/v1/me/notification-preferences", &alice)
        .await
        .unwrap();
    assert_eq!(preferences.push_platforms, vec!["fcm", "apns"]);
    let badge = preferences
        .items
        .iter()
        .find(|item| item.kind == "badge_earned")
        .unwrap();
    assert_eq!(badge.push, Some(true));

    // Devices: tokens are checked; registering one again is the same device.
    let fcm_token = "fKq3cE1xS0uB1bq5Z1mXv2:APA91bH8x1c2d3e4f5g6h7i8j9k0";
    let apns_token = "a".repeat(64);
    let dead_token = format!("dead{}", "b".repeat(60));
    for body in [
        json!({"platform": "apns", "token": "not hex"}),
        json!({"platform": "fcm", "token": "short"}),
        json!({"platform": "fcm", "token": "has spaces in it which no fcm token has"}),
    ] {
        let refused = api
            .post::<Value>("/v1/me/devices", &alice, body)
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422, "{}", refused.body);
    }
    let phone: Device = api
        .post(
            "/v1/me/devices",
            &alice,
            json!({"platform": "fcm", "token": fcm_token, "name": "Pixel 8"}),
        )
        .await
        .unwrap();
    let again: Device = api
        .post(
            "/v1/me/devices",
            &alice,
            json!({"platform": "fcm", "token": fcm_token, "name": "Pixel 8"}),
        )
        .await
        .unwrap();
    assert_eq!(again.id, phone.id);
    let iphone: Device = api
        .post(
            "/v1/me/devices",
            &bob,
            json!({"platform": "apns", "token": apns_token, "name": "iPhone"}),
        )
        .await
        .unwrap();
    let _: Device = api
        .post(
            "/v1/me/devices",
            &bob,
            json!({"platform": "apns", "token": dead_token, "name": "old iPad"}),
        )
        .await
        .unwrap();
    // Nobody removes another person's device.
    let refused = api
        .send::<Value>(
            reqwest::Method::DELETE,
            &format!("/v1/me/devices/{}", phone.id),
            &bob,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status, 404);

    // FCM: the exact HTTP v1 message, authorised by a token from the service account.
    grant(&harness, &admin, "alice", "first_share", "First share").await;
    let sent = eventually(Duration::from_secs(30), "the FCM message", || async {
        log.lock().unwrap().fcm.first().cloned()
    })
    .await;
    let id = sent["message"]["data"]["notification_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("cm_"));
    assert_eq!(
        sent,
        json!({"message": {
            "token": fcm_token,
            "notification": {"title": "You earned the badge First share", "body": sent["message"]["notification"]["body"]},
            "data": {"kind": "badge_earned", "notification_id": id},
            "android": {"priority": "high"}
        }})
    );

    // APNs: one push per device over HTTP/2; the device APNs calls unregistered is removed
    // and its delivery says why.
    grant(&harness, &admin, "bob", "first_share", "First share").await;
    let pushed = eventually(Duration::from_secs(30), "both APNs pushes", || async {
        let apns = log.lock().unwrap().apns.clone();
        (apns.len() >= 2).then_some(apns)
    })
    .await;
    let to_iphone = pushed
        .iter()
        .find(|(token, _)| *token == apns_token)
        .unwrap();
    assert_eq!(
        to_iphone.1["aps"]["alert"]["title"],
        "You earned the badge First share"
    );
    assert_eq!(to_iphone.1["aps"]["sound"], "default");
    assert_eq!(to_iphone.1["kind"], "badge_earned");
    let remaining: Devices = eventually(
        Duration::from_secs(30),
        "the dead device is removed",
        || async {
            let devices: Devices = api.get("/v1/me/devices", &bob).await.unwrap();
            (devices.items.len() == 1).then_some(devices)
        },
    )
    .await;
    assert_eq!(remaining.items[0].id, iphone.id);
    let history = eventually(
        Duration::from_secs(30),
        "both outcomes recorded",
        || async {
            let list = deliveries(&harness, &bob).await;
            (list
                .items
                .iter()
                .filter(|item| item.status != "pending")
                .count()
                == 2)
                .then_some(list)
        },
    )
    .await;
    let mut outcomes: Vec<(String, String)> = history
        .items
        .iter()
        .map(|item| (item.channel.clone(), item.status.clone()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            ("push".to_string(), "sent".to_string()),
            ("push".to_string(), "skipped".to_string())
        ]
    );
    assert!(history.items.iter().any(|item| {
        item.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("410")
    }));

    // Alice turns badge pushes off: the next badge reaches her inbox, not her phone; the
    // access token was asked for once.
    let _: NotificationPreferences = api
        .send(
            reqwest::Method::PUT,
            "/v1/me/notification-preferences",
            &alice,
            Some(json!({"items": [{"kind": "badge_earned", "in_app": true, "email": true, "push": false}]})),
        )
        .await
        .unwrap();
    grant(&harness, &admin, "alice", "storyteller", "Storyteller").await;
    grant(&harness, &admin, "bob", "storyteller", "Storyteller").await;
    eventually(Duration::from_secs(30), "bob's second push", || async {
        (log.lock().unwrap().apns.len() >= 3).then_some(())
    })
    .await;
    let inbox: Inbox = api.get("/v1/me/notifications", &alice).await.unwrap();
    assert!(
        inbox
            .items
            .iter()
            .any(|item| item.title.contains("Storyteller"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fcm, token_requests, apns) = {
        let log = log.lock().unwrap();
        (log.fcm.len(), log.token_requests, log.apns.len())
    };
    assert_eq!(fcm, 1, "no push after alice turned them off");
    assert_eq!(token_requests, 1, "the access token is reused");
    assert_eq!(apns, 3, "the removed device gets nothing more");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_reaches_fcm_and_apns_and_forgets_dead_devices() {
    push_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_on_postgres() {
    push_on(Backend::Postgres).await;
}
