//! `chorus demo`: a company, its curators and advocates, content shared on the simulated
//! LinkedIn, clicks and reactions, points and notifications — on the embedded default.
//! Also the typed API client the end-to-end tests use.

use chorus_api::Page;
use chorus_api::content::{FeedItem, Post};
use chorus_api::gamification::PointsSummary;
use chorus_api::notifications::Inbox;
use chorus_api::publishing::{Account, ConnectStarted};
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::time::Duration;

/// A small typed client of the gateway.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub http: reqwest::Client,
    pub signing_key: Vec<u8>,
}

/// An error answer of the API (problem+json) or a transport failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: serde_json::Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for ApiError {}

impl Api {
    pub fn new(base_url: &str, signing_key: Vec<u8>) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Api {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            signing_key,
        }
    }

    pub fn token(&self, tenant: &str, user: &str, roles: &[Role]) -> String {
        chorus_kit::auth::mint(
            &self.signing_key,
            tenant,
            user,
            roles,
            chrono::Duration::hours(1),
        )
    }

    pub async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| ApiError {
            status: 0,
            body: json!(error.to_string()),
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })?;
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
            return Err(ApiError { status, body });
        }
        let bytes = if bytes.is_empty() {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|error| ApiError {
            status,
            body: json!(error.to_string()),
        })
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, ApiError> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// Connects a LinkedIn account for the caller: the OAuth round trip through netsim.
    pub async fn connect_linkedin(&self, token: &str, member: &str) -> Result<Account, ApiError> {
        self.connect(token, "linkedin", member).await
    }

    /// Connects an account of an OAuth network for the caller: the authorization code round
    /// trip (with PKCE) through netsim's consent page, as `member`.
    pub async fn connect(
        &self,
        token: &str,
        network: &str,
        member: &str,
    ) -> Result<Account, ApiError> {
        let started: ConnectStarted = self
            .post("/v1/accounts/connect", token, json!({"network": network}))
            .await?;
        let consent = self
            .http
            .get(format!("{}&member={member}", started.authorize_url))
            .send()
            .await
            .map_err(|error| ApiError {
                status: 0,
                body: json!(error.to_string()),
            })?;
        let location = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| ApiError {
                status: consent.status().as_u16(),
                body: json!("no redirect from the consent page"),
            })?;
        let redirect = url::Url::parse(location).map_err(|error| ApiError {
            status: 0,
            body: json!(error.to_string()),
        })?;
        let code = redirect
            .query_pairs()
            .find(|(key, _)| key == "code")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        let state = redirect
            .query_pairs()
            .find(|(key, _)| key == "state")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        self.post(
            "/v1/accounts/callback",
            token,
            json!({"state": state, "code": code}),
        )
        .await
    }

    /// Waits until the share reaches a final state (or the timeout).
    pub async fn wait_final(
        &self,
        token: &str,
        share_id: &str,
        timeout: Duration,
    ) -> Result<Share, ApiError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let share: Share = self.get(&format!("/v1/shares/{share_id}"), token).await?;
            let done = matches!(
                share.status,
                ShareStatus::Published
                    | ShareStatus::Failed
                    | ShareStatus::NeedsReconnect
                    | ShareStatus::Cancelled
            );
            if done || tokio::time::Instant::now() > deadline {
                return Ok(share);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows a tracked link like a browser (or a bot) would; returns the redirect target.
    pub async fn click(
        &self,
        tracked_url: &str,
        user_agent: &str,
        forwarded_for: &str,
    ) -> Option<String> {
        let response = self
            .http
            .get(tracked_url)
            .header(reqwest::header::USER_AGENT, user_agent)
            .header("x-forwarded-for", forwarded_for)
            .send()
            .await
            .ok()?;
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    }
}

const DEPARTMENTS: &[&str] = &["sales", "engineering", "marketing", "hr", "support"];
const PLACES: &[(&str, &str, &str)] = &[
    ("paris", "fr", "Europe/Paris"),
    ("milan", "it", "Europe/Rome"),
    ("copenhagen", "da", "Europe/Copenhagen"),
    ("warsaw", "pl", "Europe/Warsaw"),
    ("new-york", "en", "America/New_York"),
    ("london", "en", "Europe/London"),
];
const CONTENT: &[(&str, &str, &str, &str)] = &[
    (
        "We are hiring in Lyon",
        "Our Lyon team is growing: 12 open roles in engineering.",
        "https://careers.demo.example/lyon",
        "employer_branding",
    ),
    (
        "Quarterly results",
        "A strong quarter thanks to every one of our teams.",
        "https://news.demo.example/q3",
        "company_news",
    ),
    (
        "Why data residency matters",
        "An industry analysis worth reading for every customer conversation.",
        "https://insights.example.org/residency",
        "industry_insight",
    ),
    (
        "Join us at the Berlin summit",
        "Meet our experts at booth 42 on 4 December.",
        "https://events.demo.example/berlin",
        "event",
    ),
    (
        "Planting 10,000 trees",
        "Our CSR programme reached its first milestone this autumn.",
        "https://csr.demo.example/trees",
        "csr",
    ),
    (
        "Best employer award",
        "Voted one of the best places to work in Europe.",
        "https://news.demo.example/award",
        "award",
    ),
];
const OPENERS: &[&str] = &[
    "Proud of this one:",
    "Worth a read.",
    "This is why I love working here.",
    "My team made this happen!",
    "Sharing because it matters to our customers.",
    "Have a look, friends:",
];

/// Options of `chorus demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub advocates: usize,
    pub keep_running: bool,
}

/// Runs the demo on a fresh embedded installation under `<data_dir>/demo`.
pub async fn run(mut config: chorus_kit::Config, options: DemoOptions) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    let started = std::time::Instant::now();
    let data_dir = config.data_dir.join("demo");
    let _ = std::fs::remove_dir_all(&data_dir);
    config.data_dir = data_dir;
    config.netsim.engagement_tick_ms = 300;
    config.netsim.reactions_per_tick = 1;
    config.engagement.poll_schedule_secs = vec![2, 4, 8, 16];
    config.engagement.poll_tick_ms = 500;
    let gateway_port = crate::nats::free_port()?;
    let netsim_port = crate::nats::free_port()?;
    config.gateway.listen = format!("127.0.0.1:{gateway_port}");
    config.netsim.listen = format!("127.0.0.1:{netsim_port}");
    config.public_url = format!("http://127.0.0.1:{gateway_port}");
    config.admin_listen = "127.0.0.1:0".to_string();
    let secrets = chorus_kit::auth::Secrets::resolve(&config)?;
    let shutdown = chorus_kit::Shutdown::new();
    println!(
        "Starting Chorus (every service, SQLite, a private nats-server, the network simulator)..."
    );
    let running = crate::start(config.clone(), crate::TARGETS, shutdown.clone()).await?;
    let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
    wait_ready(&api).await?;

    let tenant = "demo";
    let operator = api.token(tenant, "operator", &[Role::Operator]);
    let _: serde_json::Value = api
        .post(
            "/v1/tenants",
            &operator,
            json!({"id": tenant, "name": "Demo Company"}),
        )
        .await?;
    let _: serde_json::Value = api
        .post("/v1/users", &operator, json!({"id": "camille", "display_name": "Camille (curator)", "email": "camille@demo.example",
            "roles": ["admin", "curator"], "department": "marketing", "language": "fr", "time_zone": "Europe/Paris"}))
        .await?;
    let curator = api.token(tenant, "camille", &[Role::Admin, Role::Curator]);

    let bar_style = ProgressStyle::with_template("{prefix:>22} [{bar:40}] {pos}/{len}")
        .expect("template")
        .progress_chars("=> ");
    let people = ProgressBar::new(options.advocates as u64)
        .with_style(bar_style.clone())
        .with_prefix("advocates onboarded");
    let mut advocates = Vec::new();
    for index in 0..options.advocates {
        let (place, language, zone) = PLACES[index % PLACES.len()];
        let department = DEPARTMENTS[index % DEPARTMENTS.len()];
        let id = format!("advocate-{index:03}");
        let _: serde_json::Value = api
            .post("/v1/users", &curator, json!({"id": id, "display_name": format!("Advocate {index}"), "email": format!("{id}@demo.example"),
                "roles": ["advocate"], "department": department, "location": place, "language": language, "time_zone": zone}))
            .await?;
        let token = api.token(tenant, &id, &[Role::Advocate]);
        let account = api
            .connect_linkedin(&token, &format!("member-{index:03}"))
            .await?;
        advocates.push((id, token, account));
        people.inc(1);
    }
    people.finish();

    let mut posts: Vec<Post> = Vec::new();
    for (title, commentary, link, content_type) in CONTENT {
        let post: Post = api
            .post("/v1/posts", &curator, json!({"title": title, "commentary": commentary, "link_url": link, "content_type": content_type, "topics": [content_type]}))
            .await?;
        let post: Post = api
            .post(
                &format!("/v1/posts/{}/publish", post.id),
                &curator,
                json!({}),
            )
            .await?;
        posts.push(post);
    }

    let mut shares = Vec::new();
    for (index, (_, token, account)) in advocates.iter().enumerate() {
        let feed: Page<FeedItem> = api.get("/v1/feed?limit=10", token).await?;
        // Two advocates in three share; each picks different content and words, spread over time.
        if index % 3 == 2 {
            continue;
        }
        for pick in 0..2 {
            let post = &feed.items[(index + pick * 2) % feed.items.len()];
            let caption = format!(
                "{} {} #employee",
                OPENERS[(index + pick) % OPENERS.len()],
                post.commentary
            );
            let scheduled_at = chrono::Utc::now()
                + chrono::Duration::milliseconds(((index * 137 + pick * 911) % 8_000) as i64);
            let share: Share = api
                .post("/v1/shares", token, json!({"post_id": post.post_id, "account_id": account.id, "caption": caption, "scheduled_at": scheduled_at}))
                .await?;
            shares.push((token.clone(), share));
        }
    }
    let published_bar = ProgressBar::new(shares.len() as u64)
        .with_style(bar_style.clone())
        .with_prefix("shares published");
    let mut final_shares = Vec::new();
    for (token, share) in &shares {
        let done = api
            .wait_final(token, &share.id, Duration::from_secs(60))
            .await?;
        published_bar.inc(1);
        final_shares.push((token.clone(), done));
    }
    published_bar.finish();

    let clicks_bar = ProgressBar::new(final_shares.len() as u64)
        .with_style(bar_style)
        .with_prefix("readers clicking");
    for (index, (_, share)) in final_shares.iter().enumerate() {
        for reader in 0..(index % 4) {
            let browser =
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";
            api.click(
                &share.tracked_url,
                browser,
                &format!("198.51.100.{}", (index * 7 + reader) % 250),
            )
            .await;
        }
        let _ = api
            .click(&share.tracked_url, "LinkedInBot/1.0", "203.0.113.9")
            .await;
        clicks_bar.inc(1);
    }
    clicks_bar.finish();
    println!("Letting engagement arrive on the simulated network for a few seconds...");
    tokio::time::sleep(Duration::from_secs(6)).await;

    let published = final_shares
        .iter()
        .filter(|(_, share)| share.status == ShareStatus::Published)
        .count();
    let failed = final_shares.len() - published;
    let mut totals = chorus_api::engagement::ShareStats::default();
    for (token, share) in &final_shares {
        let stats: chorus_api::engagement::ShareStats = api
            .get(&format!("/v1/shares/{}/stats", share.id), token)
            .await?;
        totals.clicks += stats.clicks;
        totals.bot_clicks += stats.bot_clicks;
        totals.unique_visitors += stats.unique_visitors;
        totals.reactions += stats.reactions;
        totals.comments += stats.comments;
    }
    let mut board = Vec::new();
    let mut notifications = 0;
    let mut sharers = 0;
    for (id, token, _) in &advocates {
        let points: PointsSummary = api.get("/v1/me/points", token).await?;
        let inbox: Inbox = api.get("/v1/me/notifications", token).await?;
        notifications += inbox.items.len();
        if points.entries.iter().any(|entry| entry.action == "share") {
            sharers += 1;
        }
        board.push((points.balance, id.clone()));
    }
    board.sort_by(|a, b| b.cmp(a));
    println!();
    let summary: chorus_api::engagement::ProgramSummary =
        api.get("/v1/analytics/summary", &curator).await?;
    let figures = &summary.figures;
    println!(
        "Program dashboard (tenant {tenant}, {} to {})",
        summary.from, summary.to
    );
    println!("  advocates                 {}", summary.advocates);
    println!(
        "  active advocates          {}% ({} sharers, {} creators, {} lurkers; {sharers} earned share points)",
        summary.active_advocates_percent, summary.sharers, summary.creators, summary.lurkers
    );
    println!(
        "  potential reach           {} (audiences of the advocates who shared)",
        summary.potential_reach
    );
    println!(
        "  shares published          {published} of {} ({failed} not published)",
        final_shares.len()
    );
    println!(
        "  tracked-link clicks       {} by people, {} by link-preview bots, {} unique visitors",
        figures.clicks, figures.bot_clicks, figures.unique_visitors
    );
    println!(
        "  reactions, comments       {}, {} on {} impressions (engagement rate {})",
        figures.reactions,
        figures.comments,
        figures.impressions,
        figures
            .engagement_rate
            .map(|rate| format!("{rate:.2}%"))
            .unwrap_or_else(|| "n/a".into())
    );
    println!(
        "  earned media value        {:.2} {} ({}; reaction weight {})",
        summary.emv.value, summary.emv.currency, summary.emv.formula, summary.emv.reaction_weight
    );
    if totals.clicks != figures.clicks {
        println!(
            "  (share-level click counters say {}: engagement is still ingesting)",
            totals.clicks
        );
    }
    println!("  notifications delivered   {notifications}");
    println!();
    println!("Leaderboard (points)");
    for (rank, (points, id)) in board.iter().take(5).enumerate() {
        println!("  {:>2}. {id:<16} {points}", rank + 1);
    }
    println!();
    println!("Publishing outcomes per network: linkedin published {published}, failed {failed}");
    println!(
        "API docs: {}/openapi.json   metrics: http://{}/metrics",
        config.public_url, running.admin_address
    );
    println!("Demo finished in {:.1} s.", started.elapsed().as_secs_f64());
    if options.keep_running {
        println!("Still running; press Ctrl-C to stop. A curator token: {curator}");
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
    running.join().await
}

async fn wait_ready(api: &Api) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(response) = api
            .http
            .get(format!("{}/readyz", api.base_url))
            .send()
            .await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gateway did not become ready")
}
