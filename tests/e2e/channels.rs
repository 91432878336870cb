//! E-mail, Slack and Teams notifications end to end: a domain event reaches a local SMTP
//! server as a localised multipart e-mail and local Slack and Teams receivers as their
//! exact JSON; preferences and quiet hours decide what goes where; a failing channel is
//! retried without holding back the others; a refused address is a visible failure; one
//! tenant's channels never see another's notifications.

use crate::harness::{Backend, Harness, eventually};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_api::notifications::{
    ChannelDeliveries, DigestFrequency, Inbox, NotificationPreferences, TeamChannel, TeamChannels,
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
        "You earned the badge Premier partage"
    );
    assert!(
        mail.header("Content-Type")
            .starts_with("multipart/alternative")
    );
    assert!(mail.header("Message-ID").ends_with("@chorus>"));
    let text = mail.part("text/plain");
    assert!(
        text.starts_with("Bonjour Léa Martin,\n\nYou earned the badge Premier partage\n"),
        "{text}"
    );
    assert!(text.contains("Ouvrir Chorus: "), "{text}");
    assert!(text.contains("Paramètres › Notifications"), "{text}");
    let html = mail.part("text/html");
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("<p>Bonjour Léa Martin,</p>"), "{html}");
    let sent = deliveries(&harness, &lea).await;
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
                        {"type": "TextBlock", "text": "You earned the badge Connector", "weight": "Bolder", "size": "Medium", "wrap": true},
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
        "You earned the badge Connector"
    );
    assert_eq!(posted[1]["blocks"][0]["type"], "header");
    assert_eq!(posted[1]["blocks"][1]["type"], "section");
    assert!(
        posted[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("You earned the badge Connector: ")
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
