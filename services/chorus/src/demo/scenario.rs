//! The scenario of `chorus demo`, step by step, through the gateway's public API.

use super::company::{self, DEPARTMENTS, LIBRARY, PLACES};
use super::report::{NetworkOutcome, Report, TraceReport};
use super::traces::{self, TraceRecorder};
use super::{Api, DemoOptions};
use chorus_api::Page;
use chorus_api::content::{FeedItem, Post};
use chorus_api::engagement::{AnalyticsSettings, BreakdownRow, ProgramSummary};
use chorus_api::gamification::{Badges, Contest, Leaderboard};
use chorus_api::notifications::Inbox;
use chorus_api::publishing::Account;
use chorus_api::scheduling::{Share, ShareStatus};
use chorus_kit::Role;
use chorus_telemetry::metrics;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tracing::Instrument;

static PHASE_SECONDS: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_demo_phase_seconds",
        "Wall time of each phase of `chorus demo`",
        &["phase"],
    )
});
static DEMO_CALLS: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_demo_api_calls_total",
        "Calls the demo made to the public API, by phase and outcome",
        &["phase", "outcome"],
    )
});

/// Requests the demo keeps in flight at once (two cores share the services and the demo).
const IN_FLIGHT: usize = 8;
/// How long publishing may take before the report is read anyway.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(90);
/// X's 15-minute tweet window, shortened in the simulator so that a 429's wait fits.
const X_WINDOW: Duration = Duration::from_secs(5);
const TENANT: &str = "demo";
const COMPANY: &str = "Northwind Demo";

/// The networks of the demo, in the order of the report.
const NETWORKS: &[&str] = &["linkedin", "x", "facebook", "mastodon", "bluesky"];

struct Advocate {
    index: usize,
    id: String,
    language: &'static str,
    token: String,
    accounts: Vec<Account>,
    /// The member id each network knows this advocate by.
    members: BTreeMap<String, String>,
}

struct Planned {
    advocate: usize,
    share: Share,
}

fn bar(length: u64, prefix: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>22} [{bar:36.cyan/blue}] {pos}/{len} {msg} ({elapsed})",
    )
    .expect("progress template")
    .progress_chars("=> ");
    ProgressBar::new(length)
        .with_style(style)
        .with_prefix(prefix)
}

fn spinner(prefix: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>22} {spinner} {msg} ({elapsed})")
        .expect("spinner template");
    let spinner = ProgressBar::new_spinner()
        .with_style(style)
        .with_prefix(prefix);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// Times a phase: histogram, log line, span, and the time for the report.
async fn phase<T, F>(
    phases: &std::sync::Mutex<Vec<(&'static str, f64)>>,
    name: &'static str,
    future: F,
) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let outcome = future
        .instrument(tracing::info_span!(
            "demo_phase",
            service = "demo",
            phase = name
        ))
        .await;
    let elapsed = started.elapsed();
    phases
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((name, elapsed.as_secs_f64()));
    PHASE_SECONDS
        .with_label_values(&[name])
        .observe(elapsed.as_secs_f64());
    DEMO_CALLS
        .with_label_values(&[name, if outcome.is_ok() { "ok" } else { "error" }])
        .inc();
    match &outcome {
        Ok(_) => tracing::info!(
            phase = name,
            elapsed_ms = elapsed.as_millis() as u64,
            "demo phase done"
        ),
        Err(error) => {
            tracing::error!(phase = name, error = %format!("{error:#}"), "demo phase failed")
        }
    }
    outcome
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the demo on a fresh embedded installation under `<data_dir>/demo`; prints the
/// progress and the report, and returns the report.
pub async fn run(mut config: chorus_kit::Config, options: DemoOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(
        options.advocates >= 1,
        "the demo needs at least one advocate (--advocates)"
    );
    let started = Instant::now();
    let data_dir = config.data_dir.join("demo");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).map_err(|error| {
            anyhow::anyhow!(
                "could not clear the previous demo's data in {}: {error}",
                data_dir.display()
            )
        })?;
    }
    config.data_dir = data_dir;
    // Time runs faster in the demo: engagement ticks, metric polls and X's window.
    config.netsim.engagement_tick_ms = 300;
    config.netsim.reactions_per_tick = 1;
    config.engagement.poll_schedule_secs = vec![2, 4, 8, 16];
    config.engagement.poll_tick_ms = 500;
    config.scheduling.max_idle_ms = 250;
    // The demo spreads its scheduled shares itself (over `--schedule-over` seconds).
    config.scheduling.stagger_window_secs = 0;
    config.gateway.rpc_timeout_ms = config.gateway.rpc_timeout_ms.max(15_000);
    let gateway_port = crate::nats::free_port()?;
    let netsim_port = crate::nats::free_port()?;
    config.gateway.listen = format!("127.0.0.1:{gateway_port}");
    config.netsim.listen = format!("127.0.0.1:{netsim_port}");
    config.public_url = format!("http://127.0.0.1:{gateway_port}");
    config.admin_listen = "127.0.0.1:0".to_string();
    let mut simulator = crate::netsim_options(&config);
    simulator.x.tweet_window = X_WINDOW;

    let secrets = chorus_kit::auth::Secrets::resolve(&config)?;
    let shutdown = chorus_kit::Shutdown::new();
    println!(
        "Starting Chorus: every service, SQLite, a private nats-server and the network simulator..."
    );
    let running =
        crate::start_with_netsim(config.clone(), crate::TARGETS, shutdown.clone(), simulator)
            .await?;
    let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
    let outcome = async {
        wait_ready(&api).await?;
        let demo = Demo {
            api: api.clone(),
            netsim_url: config.netsim_url(),
            metrics_url: format!("http://{}/metrics", running.admin_address),
            options: options.clone(),
            phases: Default::default(),
        };
        demo.play(started)
            .instrument(tracing::info_span!(
                "demo",
                service = "demo",
                advocates = options.advocates
            ))
            .await
    }
    .await;
    match &outcome {
        Ok(report) => {
            println!("{}", report.render());
            if options.keep_running {
                let curator = api.token(TENANT, "camille", &[Role::Admin, Role::Curator]);
                let advocate = api.token(TENANT, "advocate-000", &[Role::Advocate]);
                println!(
                    "Still running; press Ctrl-C to stop.\n  curator token:  {curator}\n  advocate token: {advocate}\n  try: curl -H \"Authorization: Bearer $TOKEN\" {}/v1/analytics/summary",
                    config.public_url
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        Err(error) => tracing::error!(error = %format!("{error:#}"), "demo failed"),
    }
    shutdown.cancel();
    let stopped = running.join().await;
    let report = outcome?;
    stopped?;
    Ok(report)
}

struct Demo {
    api: Api,
    netsim_url: String,
    metrics_url: String,
    options: DemoOptions,
    /// Wall time of each phase, in order.
    phases: std::sync::Mutex<Vec<(&'static str, f64)>>,
}

impl Demo {
    async fn play(&self, started: Instant) -> anyhow::Result<Report> {
        let api = &self.api;
        let operator = api.token(TENANT, "operator", &[Role::Operator]);
        let _: serde_json::Value = api
            .post(
                "/v1/tenants",
                &operator,
                json!({"id": TENANT, "name": COMPANY}),
            )
            .await?;
        let _: serde_json::Value = api
            .post("/v1/users", &operator, json!({"id": "camille", "display_name": "Camille Martin (marketing)",
                "email": "camille@demo.example", "roles": ["admin", "curator"], "department": "marketing",
                "location": "paris", "language": "fr", "time_zone": "Europe/Paris"}))
            .await?;
        let curator = api.token(TENANT, "camille", &[Role::Admin, Role::Curator]);
        let _: serde_json::Value = api
            .post(
                "/v1/users",
                &curator,
                json!({"id": "jonas", "display_name": "Jonas Weber (HR)",
                "email": "jonas@demo.example", "roles": ["curator"], "department": "hr",
                "location": "berlin", "language": "de", "time_zone": "Europe/Berlin"}),
            )
            .await?;
        let hr_curator = api.token(TENANT, "jonas", &[Role::Curator]);
        // A European company: days end at midnight in Paris, values in euros.
        let mut settings: AnalyticsSettings = api.get("/v1/analytics/settings", &curator).await?;
        settings.time_zone = "Europe/Paris".to_string();
        settings.currency = "EUR".to_string();
        let _: AnalyticsSettings = api
            .send(
                reqwest::Method::PUT,
                "/v1/analytics/settings",
                &curator,
                Some(serde_json::to_value(&settings)?),
            )
            .await?;

        let mut advocates = phase(&self.phases, "onboarding", self.onboard(&curator)).await?;
        let posts = phase(
            &self.phases,
            "content",
            self.publish_content(&curator, &hr_curator),
        )
        .await?;
        let contest = phase(&self.phases, "contest", self.start_contest(&curator)).await?;
        let revoked = phase(&self.phases, "faults", self.inject_faults(&advocates)).await?;
        let (planned, trace) = phase(
            &self.phases,
            "sharing",
            self.share(&mut advocates, revoked.as_deref()),
        )
        .await?;
        let shares = phase(
            &self.phases,
            "publishing",
            self.wait_published(&advocates, &planned),
        )
        .await?;
        let talked_about = phase(&self.phases, "readers", self.read(&shares)).await?;
        phase(
            &self.phases,
            "engagement",
            self.let_engagement_arrive(&curator, talked_about > 0),
        )
        .await?;
        phase(
            &self.phases,
            "report",
            self.report(&curator, &advocates, &posts, contest, trace, started),
        )
        .await
    }

    /// Advocates join, follow a topic and connect their accounts.
    async fn onboard(&self, curator: &str) -> anyhow::Result<Vec<Advocate>> {
        let people = bar(self.options.advocates as u64, "advocates onboarded");
        let connected: BTreeMap<String, usize> = BTreeMap::new();
        let connected = std::sync::Mutex::new(connected);
        let advocates: Vec<Advocate> = futures::stream::iter(0..self.options.advocates)
            .map(|index| {
                let people = people.clone();
                let connected = &connected;
                async move {
                    let advocate = self.onboard_one(curator, index).await?;
                    {
                        let mut connected = connected.lock().expect("account counts");
                        for account in &advocate.accounts {
                            *connected.entry(account.network.clone()).or_insert(0) += 1;
                        }
                        people.set_message(
                            connected
                                .iter()
                                .map(|(network, count)| format!("{network} {count}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        );
                    }
                    people.inc(1);
                    anyhow::Ok(advocate)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        people.finish();
        let mut advocates = advocates;
        advocates.sort_by_key(|advocate| advocate.index);
        tracing::info!(
            advocates = advocates.len(),
            accounts = advocates.iter().map(|a| a.accounts.len()).sum::<usize>(),
            "advocates onboarded"
        );
        Ok(advocates)
    }

    async fn onboard_one(&self, curator: &str, index: usize) -> anyhow::Result<Advocate> {
        let api = &self.api;
        let place = &PLACES[index % PLACES.len()];
        let department = DEPARTMENTS[(index / PLACES.len() + index) % DEPARTMENTS.len()];
        let names = company::first_names(place.language);
        let initial = company::LAST_INITIALS
            .chars()
            .nth(index % company::LAST_INITIALS.len())
            .unwrap_or('A');
        let display_name = format!("{} {initial}.", names[(index / PLACES.len()) % names.len()]);
        let id = format!("advocate-{index:03}");
        let _: serde_json::Value = api
            .post("/v1/users", curator, json!({"id": id, "display_name": display_name,
                "email": format!("{id}@demo.example"), "roles": ["advocate"], "department": department,
                "location": place.city, "language": place.language, "time_zone": place.time_zone}))
            .await?;
        let token = api.token(TENANT, &id, &[Role::Advocate]);
        let piece = &LIBRARY[index % LIBRARY.len()];
        let topic = piece.topics[0];
        let _: serde_json::Value = api
            .send(
                reqwest::Method::PUT,
                &format!("/v1/me/topics/{topic}"),
                &token,
                None,
            )
            .await?;
        // Everyone is on LinkedIn; fewer on the other networks.
        let mut networks = vec!["linkedin"];
        if index.is_multiple_of(2) {
            networks.push("x");
        }
        if index % 5 == 1 {
            networks.push("facebook");
        }
        if index % 6 == 3 {
            networks.push("mastodon");
        }
        if index % 7 == 4 {
            networks.push("bluesky");
        }
        let mut accounts = Vec::new();
        let mut members = BTreeMap::new();
        for network in networks {
            let member = format!("{id}-{network}");
            let account = if network == "bluesky" {
                let handle = format!("{id}.bsky.social");
                members.insert(network.to_string(), handle.clone());
                api.post(
                    "/v1/accounts/app-password",
                    &token,
                    json!({"network": "bluesky", "identifier": handle,
                        "app_password": "abcd-efgh-ijkl-mnop"}),
                )
                .await?
            } else {
                members.insert(network.to_string(), member.clone());
                api.connect(&token, network, &member).await?
            };
            accounts.push(account);
        }
        Ok(Advocate {
            index,
            id,
            language: place.language,
            token,
            accounts,
            members,
        })
    }

    /// Curators publish the library: each piece in its languages, some targeted.
    async fn publish_content(&self, curator: &str, hr_curator: &str) -> anyhow::Result<Vec<Post>> {
        let api = &self.api;
        let posts_bar = bar(LIBRARY.len() as u64, "posts published");
        let mut posts = Vec::new();
        for piece in LIBRARY {
            let (language, title, commentary) = piece.texts[0];
            let variants: Vec<serde_json::Value> = piece.texts[1..]
                .iter()
                .map(|(language, title, commentary)| {
                    json!({"language": language, "title": title, "commentary": commentary})
                })
                .collect();
            let captions: Vec<serde_json::Value> = piece
                .x_caption
                .map(|text| json!({"network": "x", "text": text}))
                .into_iter()
                .collect();
            let author = if piece.by_hr { hr_curator } else { curator };
            let post: Post = api
                .post("/v1/posts", author, json!({"title": title, "commentary": commentary,
                    "link_url": piece.link, "content_type": piece.content_type, "topics": piece.topics,
                    "language": language, "variants": variants, "captions": captions,
                    "targeting": {"departments": piece.departments}}))
                .await?;
            let post: Post = api
                .post(&format!("/v1/posts/{}/publish", post.id), author, json!({}))
                .await?;
            posts_bar.set_message(piece.content_type);
            posts_bar.inc(1);
            posts.push(post);
        }
        posts_bar.finish_with_message(format!(
            "{} languages",
            LIBRARY
                .iter()
                .flat_map(|piece| piece.texts.iter().map(|text| text.0))
                .collect::<BTreeSet<_>>()
                .len()
        ));
        Ok(posts)
    }

    /// A contest on the jobs posts, scored by clicks, running through the demo.
    async fn start_contest(&self, curator: &str) -> anyhow::Result<Contest> {
        let now = chrono::Utc::now();
        let contest: Contest = self
            .api
            .post(
                "/v1/contests",
                curator,
                json!({"name": "Hiring sprint", "starts_at": now, "ends_at": now + chrono::Duration::days(14),
                    "metric": "clicks", "topic": "jobs"}),
            )
            .await?;
        tracing::info!(contest_id = %contest.id, "contest started");
        Ok(contest)
    }

    /// Realistic trouble on the simulated networks, through netsim's control API: LinkedIn
    /// unavailable for three posts (retried), a Facebook Page permission missing (a
    /// permanent failure with Graph's reason), an X burst limit (a 429, then a wait for
    /// the window), Bluesky's upstream failing once, and one Mastodon account whose token
    /// was revoked (needs reconnecting). Returns the advocate with the revoked token.
    async fn inject_faults(&self, advocates: &[Advocate]) -> anyhow::Result<Option<String>> {
        let faults = [
            ("linkedin", 503, 3),
            ("facebook", 403, 1),
            ("x", 429, 1),
            ("bluesky", 502, 1),
        ];
        for (network, status, count) in faults {
            let response = self
                .api
                .http
                .post(format!(
                    "{}/_netsim/faults?network={network}",
                    self.netsim_url
                ))
                .json(&json!({"kind": "status", "status": status, "count": count}))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "netsim refused the {network} fault: HTTP {}",
                response.status()
            );
            tracing::info!(
                network,
                status,
                count,
                "fault injected on the simulated network"
            );
        }
        let revoked = advocates
            .iter()
            .find(|advocate| advocate.members.contains_key("mastodon"));
        if let Some(advocate) = revoked {
            let member = &advocate.members["mastodon"];
            let response = self
                .api
                .http
                .post(format!(
                    "{}/_netsim/members/{member}/expire-tokens",
                    self.netsim_url
                ))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "netsim refused to revoke {member}'s tokens: HTTP {}",
                response.status()
            );
            tracing::info!(advocate = %advocate.id, member = %member, "mastodon token revoked on the simulated network");
        }
        Ok(revoked.map(|advocate| advocate.id.clone()))
    }

    /// Two advocates in three share: their first pick on every account they have, then
    /// one or two more posts on one account each, some now and some scheduled. One share
    /// is created under a sampled trace.
    async fn share(
        &self,
        advocates: &mut [Advocate],
        revoked: Option<&str>,
    ) -> anyhow::Result<(Vec<Planned>, Option<(String, String)>)> {
        let sharers: Vec<&Advocate> = advocates
            .iter()
            .filter(|advocate| advocate.index % 3 != 2 || Some(advocate.id.as_str()) == revoked)
            .collect();
        let shares_bar = bar(sharers.len() as u64, "advocates sharing");
        let traceparent = traces::new_traceparent();
        let planned: Vec<Vec<Planned>> = futures::stream::iter(sharers)
            .map(|advocate| {
                let shares_bar = shares_bar.clone();
                let traceparent = &traceparent;
                async move {
                    let traced = (advocate.index == 0).then_some(traceparent.0.as_str());
                    let shares = self.share_one(advocate, revoked, traced).await?;
                    shares_bar.inc(1);
                    anyhow::Ok(shares)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let planned: Vec<Planned> = planned.into_iter().flatten().collect();
        let scheduled = planned
            .iter()
            .filter(|planned| {
                planned.share.due_at
                    > planned.share.created_at + chrono::Duration::milliseconds(500)
            })
            .count();
        shares_bar.finish_with_message(format!(
            "{} shares, {scheduled} scheduled over {} s",
            planned.len(),
            self.options.schedule_over.as_secs()
        ));
        let trace = planned
            .iter()
            .find(|planned| planned.advocate == 0)
            .map(|planned| (traceparent.1.clone(), planned.share.id.clone()));
        Ok((planned, trace))
    }

    async fn share_one(
        &self,
        advocate: &Advocate,
        revoked: Option<&str>,
        traceparent: Option<&str>,
    ) -> anyhow::Result<Vec<Planned>> {
        let api = &self.api;
        let feed: Page<FeedItem> = api.get("/v1/feed?limit=20", &advocate.token).await?;
        anyhow::ensure!(
            !feed.items.is_empty(),
            "{}'s feed is empty: the published posts did not reach it",
            advocate.id
        );
        let picks = 1 + advocate.index % 3;
        let mut planned = Vec::new();
        for pick in 0..picks {
            let item = &feed.items[(advocate.index + pick) % feed.items.len()];
            // The first pick goes to every account; the next ones to one account each.
            let accounts: Vec<&Account> = if pick == 0 {
                advocate.accounts.iter().collect()
            } else {
                vec![&advocate.accounts[(advocate.index + pick) % advocate.accounts.len()]]
            };
            for (slot, account) in accounts.into_iter().enumerate() {
                let openers = company::openers(advocate.language);
                let opener = openers[(advocate.index + pick + slot) % openers.len()];
                let words = item
                    .captions
                    .iter()
                    .find(|caption| caption.network == account.network)
                    .map(|caption| caption.text.clone())
                    .unwrap_or_else(|| item.commentary.clone());
                let caption = format!("{opener} {words}");
                let mut body =
                    json!({"post_id": item.post_id, "account_id": account.id, "caption": caption});
                // A third of the shares are scheduled, spread over the next seconds; the
                // revoked account shares at once, so its outcome is in the report.
                let seed = hash(&format!("{}-{pick}-{slot}", advocate.id));
                if seed.is_multiple_of(3) && Some(advocate.id.as_str()) != revoked {
                    let spread_ms = self.options.schedule_over.as_millis().max(1) as u64;
                    let delay_ms = 1_000 + seed % spread_ms;
                    body["scheduled_at"] =
                        json!(chrono::Utc::now() + chrono::Duration::milliseconds(delay_ms as i64));
                }
                let share: Share = match traceparent {
                    Some(traceparent) if planned.is_empty() => {
                        api.post_traced("/v1/shares", &advocate.token, body, traceparent)
                            .await?
                    }
                    _ => api.post("/v1/shares", &advocate.token, body).await?,
                };
                planned.push(Planned {
                    advocate: advocate.index,
                    share,
                });
            }
        }
        Ok(planned)
    }

    /// Follows every share until it is final (or the timeout), through each advocate's
    /// list of shares.
    async fn wait_published(
        &self,
        advocates: &[Advocate],
        planned: &[Planned],
    ) -> anyhow::Result<Vec<(usize, Share)>> {
        let published_bar = bar(planned.len() as u64, "shares final");
        let mut pending: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for planned in planned {
            pending
                .entry(planned.advocate)
                .or_default()
                .insert(planned.share.id.clone());
        }
        let mut finals: HashMap<String, (usize, Share)> = HashMap::new();
        let deadline = Instant::now() + PUBLISH_TIMEOUT;
        while !pending.is_empty() && Instant::now() < deadline {
            let lists: Vec<(usize, Vec<Share>)> = futures::stream::iter(pending.keys().copied())
                .map(|index| async move {
                    let shares = self.shares_of(&advocates[index]).await?;
                    anyhow::Ok((index, shares))
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect()
                .await?;
            for (index, shares) in lists {
                for share in shares {
                    let is_final = matches!(
                        share.status,
                        ShareStatus::Published
                            | ShareStatus::Failed
                            | ShareStatus::NeedsReconnect
                            | ShareStatus::Cancelled
                            | ShareStatus::Unconfirmed
                    );
                    if is_final
                        && let Some(ids) = pending.get_mut(&index)
                        && ids.remove(&share.id)
                    {
                        finals.insert(share.id.clone(), (index, share));
                    }
                }
                if pending.get(&index).is_some_and(BTreeSet::is_empty) {
                    pending.remove(&index);
                }
            }
            let published = finals
                .values()
                .filter(|(_, share)| share.status == ShareStatus::Published)
                .count();
            published_bar.set_position(finals.len() as u64);
            published_bar.set_message(format!(
                "{published} published, {} not",
                finals.len() - published
            ));
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
        let still_pending: usize = pending.values().map(BTreeSet::len).sum();
        if still_pending > 0 {
            tracing::warn!(still_pending, "shares not final before the demo's timeout");
            published_bar.abandon_with_message(format!("{still_pending} still pending"));
        } else {
            published_bar.finish();
        }
        let mut shares: Vec<(usize, Share)> = finals.into_values().collect();
        shares.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        Ok(shares)
    }

    /// Every share of an advocate, all pages.
    async fn shares_of(&self, advocate: &Advocate) -> anyhow::Result<Vec<Share>> {
        let mut shares = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/shares?limit=100&cursor={cursor}"),
                None => "/v1/shares?limit=100".to_string(),
            };
            let page: Page<Share> = self.api.get(&path, &advocate.token).await?;
            shares.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(shares),
            }
        }
    }

    /// Readers follow the tracked links of published shares (each network's link-preview
    /// bot fetches every link once) and some comment or reshare on the networks.
    /// Returns how many posts got comments or reshares.
    async fn read(&self, shares: &[(usize, Share)]) -> anyhow::Result<usize> {
        const BROWSERS: &[&str] = &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ];
        let published: Vec<&Share> = shares
            .iter()
            .map(|(_, share)| share)
            .filter(|share| share.status == ShareStatus::Published)
            .collect();
        let mut visits = Vec::new();
        for (number, share) in published.iter().enumerate() {
            let bot = match share.network.as_str() {
                "linkedin" => {
                    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
                }
                "x" => "Twitterbot/1.0",
                "facebook" => {
                    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
                }
                "mastodon" => "Mastodon/4.3.2 (http.rb/5.2.0; +https://mastodon.social/)",
                _ => "Bluesky Cardyb/1.1",
            };
            visits.push((
                share.tracked_url.clone(),
                bot.to_string(),
                "203.0.113.9".to_string(),
            ));
            let readers = hash(&share.id) % 6;
            for reader in 0..readers {
                let browser = BROWSERS[(number + reader as usize) % BROWSERS.len()];
                // Some readers come back: the same visitor counts once.
                let address = format!("198.51.{}.{}", number % 200, reader % 4 + 1);
                visits.push((share.tracked_url.clone(), browser.to_string(), address));
            }
        }
        let clicks_bar = bar(visits.len() as u64, "readers clicking");
        let redirected = std::sync::atomic::AtomicUsize::new(0);
        futures::stream::iter(visits)
            .for_each_concurrent(IN_FLIGHT * 2, |(url, agent, address)| {
                let clicks_bar = clicks_bar.clone();
                let redirected = &redirected;
                async move {
                    if self.api.click(&url, &agent, &address).await.is_some() {
                        redirected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    clicks_bar.inc(1);
                }
            })
            .await;
        let redirected = redirected.into_inner();
        clicks_bar.finish_with_message(format!("{redirected} redirected"));
        tracing::info!(redirected, "tracked links followed");

        // Conversations on the networks: a third of the posts get comments or reshares,
        // which the engagement service reads on its next poll (or Facebook's webhook).
        let talked_about: Vec<(String, serde_json::Value)> = published
            .iter()
            .filter_map(|share| {
                let seed = hash(&format!("{}-talk", share.id));
                let urn = share.external_id.clone()?;
                seed.is_multiple_of(3).then(|| {
                    (
                        urn,
                        json!({"comments": 1 + seed % 3, "reshares": seed % 2, "impressions": 40 + seed % 200}),
                    )
                })
            })
            .collect();
        let talked = talked_about.len();
        let talk_bar = bar(talked as u64, "comments and reshares");
        futures::stream::iter(talked_about)
            .map(|(urn, metrics)| {
                let talk_bar = talk_bar.clone();
                async move {
                    let mut url = url::Url::parse(&self.netsim_url)?;
                    url.path_segments_mut()
                        .map_err(|()| {
                            anyhow::anyhow!("netsim URL {} has no path", self.netsim_url)
                        })?
                        .extend(["_netsim", "posts", &urn, "metrics"]);
                    let response = self.api.http.post(url).json(&metrics).send().await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "netsim did not take engagement on {urn}: HTTP {}",
                        response.status()
                    );
                    talk_bar.inc(1);
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        talk_bar.finish();
        Ok(talked)
    }

    /// Waits for clicks to be counted and engagement to be read from the networks: until
    /// the click count holds still, reactions (and, when readers talked, comments or
    /// reshares) have arrived and the first metric polls are done.
    async fn let_engagement_arrive(
        &self,
        curator: &str,
        expect_conversation: bool,
    ) -> anyhow::Result<()> {
        let waiting = spinner("engagement arriving");
        let started = Instant::now();
        let mut last: Option<(i64, i64)> = None;
        let mut steady = 0;
        while started.elapsed() < Duration::from_secs(25) {
            let summary: ProgramSummary = self.api.get("/v1/analytics/summary", curator).await?;
            let figures = &summary.figures;
            waiting.set_message(format!(
                "{} clicks, {} reactions, {} comments, {} reshares",
                figures.clicks, figures.reactions, figures.comments, figures.reshares
            ));
            let now = (figures.clicks + figures.bot_clicks, figures.reactions);
            let conversation = figures.comments + figures.reshares > 0 || !expect_conversation;
            if last.map(|last| last.0) == Some(now.0) && now.1 > 0 && conversation {
                steady += 1;
            } else {
                steady = 0;
            }
            last = Some(now);
            if steady >= 2 && started.elapsed() >= Duration::from_secs(5) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        waiting.finish();
        Ok(())
    }

    async fn report(
        &self,
        curator: &str,
        advocates: &[Advocate],
        posts: &[Post],
        contest: Contest,
        trace: Option<(String, String)>,
        started: Instant,
    ) -> anyhow::Result<Report> {
        let api = &self.api;
        let reading = spinner("reading the report");
        let summary: ProgramSummary = api.get("/v1/analytics/summary", curator).await?;
        let by_network: Vec<BreakdownRow> = api
            .get("/v1/analytics/breakdown?by=network", curator)
            .await?;
        let leaderboard: Leaderboard = api
            .get("/v1/leaderboard?period=all_time&limit=5", curator)
            .await?;
        let contest: Contest = api
            .get(&format!("/v1/contests/{}", contest.id), curator)
            .await?;

        // Each advocate's shares, badges and notifications, as they see them.
        let per_advocate: Vec<(Vec<Share>, Badges, Inbox)> = futures::stream::iter(advocates)
            .map(|advocate| async move {
                let shares = self.shares_of(advocate).await?;
                let badges: Badges = api.get("/v1/me/badges", &advocate.token).await?;
                let inbox: Inbox = api.get("/v1/me/notifications", &advocate.token).await?;
                anyhow::Ok((shares, badges, inbox))
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        let metrics_text = api
            .http
            .get(&self.metrics_url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let counters = super::report::publisher_metrics(&metrics_text);

        let mut outcomes: BTreeMap<String, NetworkOutcome> = BTreeMap::new();
        let mut accounts: BTreeMap<String, usize> = BTreeMap::new();
        for network in NETWORKS {
            outcomes.insert(network.to_string(), NetworkOutcome::default());
        }
        for advocate in advocates {
            for account in &advocate.accounts {
                *accounts.entry(account.network.clone()).or_insert(0) += 1;
            }
        }
        let mut badges = BTreeMap::new();
        let mut notifications = BTreeMap::new();
        let mut all_shares = HashMap::new();
        for (shares, earned, inbox) in &per_advocate {
            for share in shares {
                let outcome = outcomes.entry(share.network.clone()).or_default();
                outcome.shares += 1;
                match share.status {
                    ShareStatus::Published => outcome.published += 1,
                    ShareStatus::Failed => outcome.failed += 1,
                    ShareStatus::NeedsReconnect => outcome.needs_reconnect += 1,
                    ShareStatus::Cancelled => outcome.cancelled += 1,
                    ShareStatus::Unconfirmed => outcome.unconfirmed += 1,
                    ShareStatus::Scheduled | ShareStatus::Due => outcome.pending += 1,
                }
                if let Some(reason) = &share.failure_reason {
                    let status = match share.status {
                        ShareStatus::NeedsReconnect => "needs reconnect",
                        ShareStatus::Cancelled => "cancelled",
                        ShareStatus::Unconfirmed => "unconfirmed",
                        _ => "failed",
                    };
                    *outcome
                        .reasons
                        .entry(format!("{status}: {reason}"))
                        .or_insert(0) += 1;
                }
                all_shares.insert(share.id.clone(), share.clone());
            }
            for badge in &earned.items {
                *badges.entry(badge.badge.clone()).or_insert(0) += 1;
            }
            for notification in &inbox.items {
                *notifications.entry(notification.kind.clone()).or_insert(0) += 1;
            }
        }
        for (network, outcome) in outcomes.iter_mut() {
            outcome.retried = counters.retried.get(network).copied().unwrap_or(0);
            outcome.rate_limited = counters.rate_limited.get(network).copied().unwrap_or(0);
            outcome.limit_wait_secs = counters
                .limit_wait_secs
                .get(network)
                .copied()
                .unwrap_or(0.0);
        }

        let trace = trace.and_then(|(trace_id, share_id)| {
            let share = all_shares.get(&share_id)?;
            let recorded = self
                .options
                .traces
                .as_ref()
                .map(|recorder: &TraceRecorder| recorder.spans_of(&trace_id));
            Some(TraceReport {
                trace_id,
                share_id: share_id.clone(),
                network: share.network.clone(),
                status: format!("{:?}", share.status).to_lowercase(),
                spans_per_service: recorded.as_deref().map(traces::spans_per_service),
                publish_span_seen: recorded.as_ref().map(|spans| {
                    spans.iter().any(|span| {
                        span.name == "publish" && span.share_id.as_deref() == Some(&share_id)
                    })
                }),
            })
        });
        reading.finish_and_clear();
        let languages = advocates
            .iter()
            .map(|advocate| advocate.language)
            .collect::<BTreeSet<_>>()
            .len();
        let cities = PLACES.len().min(advocates.len());
        let departments = DEPARTMENTS.len().min(advocates.len());
        Ok(Report {
            company: COMPANY.to_string(),
            advocates: advocates.len(),
            cities,
            languages,
            departments,
            accounts,
            posts: posts.len(),
            summary,
            by_network,
            leaderboard,
            contest: Some(contest),
            outcomes,
            badges,
            notifications,
            trace,
            api_url: api.base_url.clone(),
            docs_url: format!("{}/openapi.json", api.base_url),
            metrics_url: self.metrics_url.clone(),
            elapsed_secs: started.elapsed().as_secs_f64(),
            phases: self
                .phases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(name, secs)| (name.to_string(), *secs))
                .collect(),
        })
    }
}

async fn wait_ready(api: &Api) -> anyhow::Result<()> {
    for _ in 0..400 {
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
    anyhow::bail!("the gateway did not become ready within 20 s")
}
