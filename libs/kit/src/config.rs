//! Layered configuration: built-in defaults -> optional TOML file -> `CHORUS_*` environment
//! variables (nested keys joined by `__`, e.g. `CHORUS_GATEWAY__LISTEN`), validated at load.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Names of the services a process can run.
pub const SERVICES: &[&str] = &[
    "identity",
    "content",
    "scheduling",
    "publishing",
    "engagement",
    "gamification",
    "notifications",
    "gateway",
    "netsim",
];

/// Services that own a database.
pub const SERVICES_WITH_DATABASE: &[&str] = &[
    "identity",
    "content",
    "scheduling",
    "publishing",
    "engagement",
    "gamification",
    "notifications",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Folder for the embedded default: SQLite files, nats-server storage, generated keys.
    pub data_dir: PathBuf,
    /// NATS server URL; when unset, `chorus run` starts a private nats-server child process.
    pub nats_url: Option<String>,
    /// The nats-server executable used when no NATS URL is set.
    pub nats_server_bin: String,
    /// Replicas of each JetStream stream and bucket (3 on a three-server NATS cluster). Used
    /// when a stream is created; an existing stream keeps what it has.
    pub nats_stream_replicas: usize,
    /// Bytes each domain's stream keeps at most (when created; -1: no limit).
    pub nats_stream_max_bytes: i64,
    /// Days each domain's stream keeps its messages (when created).
    pub nats_stream_max_age_days: u64,
    /// Base URL under which the gateway is reachable by the public (tracked links).
    pub public_url: String,
    /// Address of the health/readiness/metrics endpoint of this process.
    pub admin_listen: String,
    /// `json` or `pretty`.
    pub log_format: String,
    /// Log filter directives (`info`, `chorus=debug,info`).
    pub log: String,
    pub security: SecurityConfig,
    pub gateway: GatewayConfig,
    pub netsim: NetsimConfig,
    pub identity: DatabaseConfig,
    pub content: DatabaseConfig,
    pub scheduling: SchedulingConfig,
    pub publishing: PublishingConfig,
    pub engagement: EngagementConfig,
    pub gamification: GamificationConfig,
    pub notifications: NotificationsConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`; defaults to `<data_dir>/<service>.db`.
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    pub listen: String,
    /// How long the gateway waits for a service's reply.
    pub rpc_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetsimConfig {
    pub listen: String,
    /// Lifetime of access tokens netsim issues (LinkedIn: 60 days).
    pub access_token_ttl_secs: u64,
    /// Posts a member may create per UTC day before netsim answers 429.
    pub linkedin_member_daily_posts: u32,
    /// Reactions netsim adds to each post per engagement tick.
    pub reactions_per_tick: u32,
    /// Interval of simulated engagement, 0 to disable.
    pub engagement_tick_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulingConfig {
    pub database_url: Option<String>,
    /// Longest sleep of the due-loop when nothing is due sooner.
    pub max_idle_ms: u64,
    /// Shares claimed per transaction.
    pub batch_size: u64,
    /// Shares of one post by many advocates that would go out within this many seconds of
    /// each other are spread at random over the window, so that a network sees no burst of
    /// identical posts (0: off). The advocate sees the time their share got.
    pub stagger_window_secs: u64,
    /// The due-loop hands shares to the publisher this long before their due time, so that a
    /// burst of shares due at one instant is in the publisher's hands when it falls due; the
    /// publisher still waits for the due time. A share can no longer be edited or cancelled
    /// once handed over (0: hand over at the due time; at most 10,000).
    pub emit_lead_ms: u64,
    /// A share `due` this long without an outcome is handed to the publisher again (its
    /// `share.due` may be lost); at most once per this bound.
    pub redrive_after_secs: u64,
    /// How often due shares are checked for that.
    pub sweep_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishingConfig {
    pub database_url: Option<String>,
    /// Where the OAuth flow sends the advocate back (the gateway's callback).
    pub oauth_redirect_url: Option<String>,
    pub linkedin: NetworkConfig,
    pub x: NetworkConfig,
    pub facebook: NetworkConfig,
    pub instagram: NetworkConfig,
    pub mastodon: NetworkConfig,
    pub bluesky: NetworkConfig,
    /// Which of the 64 `share.due` partitions (an account hashes to one) this publisher
    /// replica owns: partition p belongs to replica p mod replicas.
    pub replica_index: u32,
    pub replicas: u32,
    /// Access tokens that end within this margin are refreshed ahead of time.
    pub token_refresh_margin_secs: u64,
    /// Authorisations that cannot be renewed and end within this window are announced to
    /// the advocate (`share.account_expiring`), once per expiry.
    pub expiry_reminder_secs: u64,
    /// How often tokens are checked for refresh and reminders.
    pub token_check_interval_ms: u64,
    /// The networks this process publishes (and keeps the tokens of), comma-separated:
    /// empty = every enabled network, `none` = none (a process that only serves accounts
    /// while per-network publishers post). Accounts of every enabled network are served.
    pub publish_networks: String,
    /// Shares each network's publisher handles at the same time (one account's shares still
    /// go one at a time, within its limits).
    pub concurrency: usize,
    /// How long a publication's lease lasts unless its holder renews it (every quarter of it):
    /// a copy of a share's delivery that finds the lease held waits this long at most, and
    /// a publisher that dies holding one is taken over after it.
    pub lease_secs: u64,
    /// Deliveries of a share before publishing gives up on it (it then ends failed, or
    /// unconfirmed when an attempt may have reached the network).
    pub max_attempts: i64,
    /// Delays before the retries of a share, in milliseconds (±20% jitter); the last one
    /// repeats.
    pub retry_delays_ms: Vec<u64>,
}

impl PublishingConfig {
    /// The enabled networks this process publishes, from `publish_networks`; an unknown or
    /// disabled name is an error, so that a typo never leaves a network without publisher.
    pub fn published_networks(&self) -> Result<Vec<&'static str>, String> {
        const ALL: [&str; 6] = [
            "linkedin",
            "x",
            "facebook",
            "instagram",
            "mastodon",
            "bluesky",
        ];
        let enabled = |name: &str| self.network(name).is_some_and(|settings| settings.enabled);
        let listed = self.publish_networks.trim();
        if listed.is_empty() {
            return Ok(ALL.into_iter().filter(|name| enabled(name)).collect());
        }
        if listed == "none" {
            return Ok(Vec::new());
        }
        let mut networks = Vec::new();
        for name in listed
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let Some(known) = ALL.into_iter().find(|known| *known == name) else {
                return Err(format!(
                    "publishing.publish_networks: unknown network {name:?} (known: {})",
                    ALL.join(", ")
                ));
            };
            if !enabled(known) {
                return Err(format!(
                    "publishing.publish_networks: {known} is not enabled (publishing.{known}.enabled)"
                ));
            }
            if !networks.contains(&known) {
                networks.push(known);
            }
        }
        Ok(networks)
    }

    /// The configuration of a network by its name (`linkedin`, `x`, ...).
    pub fn network(&self, name: &str) -> Option<&NetworkConfig> {
        match name {
            "linkedin" => Some(&self.linkedin),
            "x" => Some(&self.x),
            "facebook" => Some(&self.facebook),
            "instagram" => Some(&self.instagram),
            "mastodon" => Some(&self.mastodon),
            "bluesky" => Some(&self.bluesky),
            _ => None,
        }
    }
}

impl NetworkConfig {
    /// An enabled network with the development credentials and these quotas.
    pub fn with_limits(
        posts_per_account_per_day: u32,
        posts_per_app_per_day: u32,
        window_posts: u32,
        window_secs: u64,
    ) -> NetworkConfig {
        NetworkConfig {
            enabled: true,
            api_base_url: None,
            auth_base_url: None,
            client_id: "chorus-dev".to_string(),
            client_secret: SecretString::from("chorus-dev-secret"),
            api_version: String::new(),
            posts_per_account_per_day,
            posts_per_app_per_day,
            request_timeout_ms: 10_000,
            reads_per_minute: 600,
            window_posts,
            window_secs,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub enabled: bool,
    /// Base URL of the network's API (netsim in development and tests).
    pub api_base_url: Option<String>,
    /// Base URL of the network's OAuth pages.
    pub auth_base_url: Option<String>,
    #[serde(deserialize_with = "string_or_number")]
    pub client_id: String,
    #[serde(serialize_with = "expose_secret")]
    pub client_secret: SecretString,
    /// API version header (LinkedIn-Version).
    #[serde(deserialize_with = "string_or_number")]
    pub api_version: String,
    /// Posts allowed per account per day (governor quota).
    pub posts_per_account_per_day: u32,
    /// Posts allowed per application per day.
    pub posts_per_app_per_day: u32,
    /// Timeout of one network call.
    pub request_timeout_ms: u64,
    /// Metrics reads allowed per minute for the whole application (polls wait, not fail).
    pub reads_per_minute: u32,
    /// A shorter per-account window beside the daily quota (X: 100 per 15 min; Mastodon:
    /// 300 per 3 h); 0 posts = none.
    pub window_posts: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngagementConfig {
    pub database_url: Option<String>,
    /// Delays after publication at which network metrics are polled, in seconds.
    pub poll_schedule_secs: Vec<u64>,
    /// How often the poller looks for polls that are due.
    pub poll_tick_ms: u64,
    /// The verify token of the Facebook Page webhook subscription (Meta's `hub.verify_token`);
    /// empty: the subscription handshake is refused. Deliveries are verified with the
    /// Facebook app secret (`publishing.facebook.client_secret`).
    #[serde(serialize_with = "expose_secret")]
    pub facebook_webhook_verify_token: SecretString,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GamificationConfig {
    pub database_url: Option<String>,
    pub points_share: i64,
    pub points_click: i64,
    pub points_reaction: i64,
    pub points_comment: i64,
    pub points_reshare: i64,
    pub points_submission_approved: i64,
    pub points_survey_answered: i64,
    pub points_onboarding_completed: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    pub database_url: Option<String>,
    /// Delays before the retries of an integrator webhook delivery (the first attempt is
    /// immediate); each is jittered by ±20%.
    pub webhook_retry_schedule_ms: Vec<u64>,
    /// An endpoint whose deliveries have all failed for this long is disabled when one
    /// more message exhausts its retries.
    pub webhook_disable_after_secs: u64,
    /// Time allowed for one webhook request, connection included.
    pub webhook_timeout_ms: u64,
    /// Deliveries in flight at once.
    pub webhook_concurrency: usize,
    /// SMTP server for e-mail notifications: `smtps://user:pass@host:465` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25` (plain, for
    /// a relay on the same network). No e-mail is sent when unset.
    #[serde(serialize_with = "expose_optional_secret")]
    pub smtp_url: Option<SecretString>,
    /// Sender of e-mail notifications.
    pub email_from: String,
    /// Delays before the retries of an e-mail, Slack or Teams notification (the first
    /// attempt is immediate); each is jittered by ±20%.
    pub channel_retry_schedule_ms: Vec<u64>,
    /// Time allowed for one e-mail, Slack or Teams request.
    pub channel_timeout_ms: u64,
    /// Local time (`HH:MM`, each person's time zone) when digests go out; weekly digests on
    /// Mondays.
    pub digest_time: String,
    /// Firebase project of mobile push to Android (and iOS through Firebase); FCM is off
    /// when unset.
    pub fcm_project_id: Option<String>,
    /// The Firebase service account's JSON key file (client_email, private_key, token_uri).
    pub fcm_service_account_file: Option<PathBuf>,
    /// Base URL of the FCM HTTP v1 API.
    pub fcm_endpoint: String,
    /// Apple team id of APNs provider tokens; APNs is off when unset.
    pub apns_team_id: Option<String>,
    /// Key id of the APNs signing key.
    pub apns_key_id: Option<String>,
    /// The APNs signing key (`AuthKey_<key id>.p8`, PKCS#8 PEM).
    pub apns_key_file: Option<PathBuf>,
    /// The app's bundle id (`apns-topic`).
    pub apns_topic: Option<String>,
    /// Base URL of APNs (`https://api.sandbox.push.apple.com` for development builds).
    pub apns_endpoint: String,
    /// Admins are alerted when at least this share of a tenant's publishing outcomes in the
    /// current and previous hour are failures…
    pub failure_alert_ratio: f64,
    /// …and at least this many shares failed.
    pub failure_alert_min_failures: i64,
    /// At most one alert per tenant in this time.
    pub failure_alert_cooldown_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            database_url: None,
            // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (the Standard Webhooks schedule).
            webhook_retry_schedule_ms: vec![
                5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
            ],
            webhook_disable_after_secs: 5 * 86_400,
            webhook_timeout_ms: 15_000,
            webhook_concurrency: 32,
            smtp_url: None,
            email_from: "Chorus <notifications@chorus.localhost>".to_string(),
            // 10 s, 1 min, 5 min, 30 min, 2 h, 6 h.
            channel_retry_schedule_ms: vec![
                10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000,
            ],
            channel_timeout_ms: 15_000,
            digest_time: "08:00".to_string(),
            fcm_project_id: None,
            fcm_service_account_file: None,
            fcm_endpoint: "https://fcm.googleapis.com".to_string(),
            apns_team_id: None,
            apns_key_id: None,
            apns_key_file: None,
            apns_topic: None,
            apns_endpoint: "https://api.push.apple.com".to_string(),
            failure_alert_ratio: 0.2,
            failure_alert_min_failures: 5,
            failure_alert_cooldown_secs: 6 * 3_600,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    /// HS256 key of development tokens (`chorus token`); generated into the data folder when unset.
    #[serde(serialize_with = "expose_optional_secret")]
    pub dev_signing_key: Option<SecretString>,
    /// Token encryption keys as `kid:base64key[,kid:base64key…]`; the first one encrypts.
    /// Generated into the data folder when unset.
    #[serde(serialize_with = "expose_optional_secret")]
    pub encryption_keys: Option<SecretString>,
    /// Salt of visitor hashes for unique-visitor counting; generated when unset.
    #[serde(serialize_with = "expose_optional_secret")]
    pub visitor_salt: Option<SecretString>,
    /// OpenID Connect issuer whose tokens the gateway accepts (its JWKS found through
    /// `/.well-known/openid-configuration`); none when unset.
    pub oidc_issuer: Option<String>,
    /// The audience those tokens must name (the client id of Chorus at the issuer).
    pub oidc_audience: Option<String>,
    /// Claim naming the Chorus tenant [chorus_tenant].
    pub oidc_tenant_claim: Option<String>,
    /// Claim naming the Chorus user id [sub].
    pub oidc_user_claim: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("chorus-data"),
            nats_url: None,
            nats_server_bin: "nats-server".to_string(),
            nats_stream_replicas: 1,
            // JetStream reserves a stream's max_bytes from the server's storage when it creates
            // the stream: a limit is the operator's to size against their disks.
            nats_stream_max_bytes: -1,
            nats_stream_max_age_days: 30,
            public_url: "http://127.0.0.1:8080".to_string(),
            admin_listen: "127.0.0.1:9600".to_string(),
            log_format: "pretty".to_string(),
            log: "info".to_string(),
            security: SecurityConfig::default(),
            gateway: GatewayConfig {
                listen: "127.0.0.1:8080".to_string(),
                rpc_timeout_ms: 5_000,
            },
            netsim: NetsimConfig {
                listen: "127.0.0.1:8090".to_string(),
                access_token_ttl_secs: 60 * 24 * 3600,
                linkedin_member_daily_posts: 150,
                reactions_per_tick: 1,
                engagement_tick_ms: 2_000,
            },
            identity: DatabaseConfig::default(),
            content: DatabaseConfig::default(),
            scheduling: SchedulingConfig {
                database_url: None,
                max_idle_ms: 1_000,
                batch_size: 2_000,
                stagger_window_secs: 600,
                emit_lead_ms: 2_000,
                redrive_after_secs: 1_800,
                sweep_interval_ms: 60_000,
            },
            publishing: PublishingConfig {
                database_url: None,
                oauth_redirect_url: None,
                linkedin: NetworkConfig {
                    api_version: "202601".to_string(),
                    ..NetworkConfig::with_limits(150, 100_000, 0, 0)
                },
                // 100 per 15 min per user, 10,000 per 24 h per app; 100 per 24 h per user
                // on the Basic tier.
                x: NetworkConfig::with_limits(100, 10_000, 100, 900),
                // Pages: 4,800 calls x engaged users per rolling day; posts stay far below.
                facebook: NetworkConfig {
                    api_version: "v21.0".to_string(),
                    ..NetworkConfig::with_limits(200, 100_000, 0, 0)
                },
                // content_publishing_limit: 50 per rolling 24 h (read at run time).
                instagram: NetworkConfig {
                    api_version: "v21.0".to_string(),
                    ..NetworkConfig::with_limits(50, 100_000, 0, 0)
                },
                // Statuses: 300 per 3 h per account.
                mastodon: NetworkConfig::with_limits(2_400, 100_000, 300, 10_800),
                // 5,000 points per hour and 35,000 per day, a post costs 3.
                bluesky: NetworkConfig::with_limits(11_666, 1_000_000, 1_666, 3_600),
                replica_index: 0,
                replicas: 1,
                token_refresh_margin_secs: 900,
                expiry_reminder_secs: 7 * 86_400,
                token_check_interval_ms: 60_000,
                publish_networks: String::new(),
                concurrency: 32,
                lease_secs: 30,
                max_attempts: 8,
                retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            },
            engagement: EngagementConfig {
                database_url: None,
                poll_schedule_secs: vec![
                    3600,
                    6 * 3600,
                    24 * 3600,
                    3 * 86400,
                    7 * 86400,
                    30 * 86400,
                ],
                poll_tick_ms: 1_000,
                facebook_webhook_verify_token: SecretString::from(""),
            },
            gamification: GamificationConfig {
                database_url: None,
                points_share: 10,
                points_click: 20,
                points_reaction: 15,
                points_comment: 30,
                points_reshare: 25,
                points_submission_approved: 50,
                points_survey_answered: 5,
                points_onboarding_completed: 20,
            },
            notifications: NotificationsConfig::default(),
        }
    }
}

/// Every setting read from the environment, for `chorus run --help`.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "CHORUS_CONFIG",
        "TOML file with any of the settings below (lower-case keys, sections for dotted names)",
    ),
    (
        "CHORUS_DATA_DIR",
        "folder of the embedded default: SQLite files, nats-server storage, generated keys [chorus-data]",
    ),
    (
        "CHORUS_NATS_STREAM_REPLICAS",
        "copies of each stream and bucket when created (3 on a three-server NATS cluster) [1]",
    ),
    (
        "CHORUS_NATS_STREAM_MAX_BYTES",
        "bytes each domain's stream keeps at most when created (reserved from the server's storage), oldest dropped first; -1: none [-1]",
    ),
    (
        "CHORUS_NATS_STREAM_MAX_AGE_DAYS",
        "days each domain's stream keeps its messages when created [30]",
    ),
    (
        "CHORUS_NATS_URL",
        "NATS server URL; unset = start a private nats-server child process",
    ),
    (
        "CHORUS_NATS_SERVER_BIN",
        "nats-server executable used when CHORUS_NATS_URL is unset [nats-server]",
    ),
    (
        "CHORUS_PUBLIC_URL",
        "public base URL of the gateway, used in tracked links [http://127.0.0.1:8080]",
    ),
    (
        "CHORUS_ADMIN_LISTEN",
        "address of /healthz, /readyz and /metrics [127.0.0.1:9600]",
    ),
    ("CHORUS_LOG_FORMAT", "json or pretty [pretty]"),
    ("CHORUS_LOG", "log filter directives [info]"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP gRPC endpoint for traces (e.g. http://otel-collector:4317)",
    ),
    (
        "CHORUS_GATEWAY__LISTEN",
        "gateway REST API address [127.0.0.1:8080]",
    ),
    (
        "CHORUS_GATEWAY__RPC_TIMEOUT_MS",
        "how long the gateway waits for a service [5000]",
    ),
    (
        "CHORUS_NETSIM__LISTEN",
        "network simulator address [127.0.0.1:8090]",
    ),
    (
        "CHORUS_NETSIM__ACCESS_TOKEN_TTL_SECS",
        "lifetime of simulated access tokens [5184000]",
    ),
    (
        "CHORUS_NETSIM__LINKEDIN_MEMBER_DAILY_POSTS",
        "simulated LinkedIn posts per member per day [150]",
    ),
    (
        "CHORUS_NETSIM__ENGAGEMENT_TICK_MS",
        "interval of simulated reactions, 0 = off [2000]",
    ),
    (
        "CHORUS_<SERVICE>__DATABASE_URL",
        "database of a service (identity, content, scheduling, publishing, engagement, gamification, notifications): postgres://… or sqlite://…; default <data_dir>/<service>.db",
    ),
    (
        "CHORUS_SCHEDULING__MAX_IDLE_MS",
        "longest sleep of the due-loop [1000]",
    ),
    (
        "CHORUS_SCHEDULING__BATCH_SIZE",
        "shares claimed per transaction [2000]",
    ),
    (
        "CHORUS_SCHEDULING__STAGGER_WINDOW_SECS",
        "shares of one post due this close together are spread over the window; 0: off [600]",
    ),
    (
        "CHORUS_SCHEDULING__EMIT_LEAD_MS",
        "shares are handed to the publisher this long before they fall due (it still waits for the time); at most 10000 [2000]",
    ),
    (
        "CHORUS_PUBLISHING__CONCURRENCY",
        "shares each network's publisher handles at the same time [32]",
    ),
    (
        "CHORUS_SCHEDULING__REDRIVE_AFTER_SECS",
        "a share due this long without an outcome is handed to the publisher again [1800]",
    ),
    (
        "CHORUS_SCHEDULING__SWEEP_INTERVAL_MS",
        "how often due shares are checked for that [60000]",
    ),
    (
        "CHORUS_PUBLISHING__LEASE_SECS",
        "a publication's lease: a copy of a delivery waits for it, a dead publisher's share is taken over after it [30]",
    ),
    (
        "CHORUS_PUBLISHING__MAX_ATTEMPTS",
        "deliveries of a share before publishing gives up (failed, or unconfirmed when it may exist) [8]",
    ),
    (
        "CHORUS_PUBLISHING__RETRY_DELAYS_MS",
        "delays before a share's retries, the last repeating [[1000,5000,30000,120000,600000]]",
    ),
    (
        "CHORUS_PUBLISHING__OAUTH_REDIRECT_URL",
        "OAuth callback URL [<public_url>/v1/accounts/callback]",
    ),
    (
        "CHORUS_PUBLISHING__REPLICAS",
        "publisher replicas sharing the 64 account partitions of each network [1]",
    ),
    (
        "CHORUS_PUBLISHING__REPLICA_INDEX",
        "which replica this one is, 0 to replicas-1 (a StatefulSet ordinal) [0]",
    ),
    (
        "CHORUS_PUBLISHING__PUBLISH_NETWORKS",
        "networks this process publishes, comma-separated; empty = every enabled one, none = none (accounts only) []",
    ),
    (
        "CHORUS_PUBLISHING__TOKEN_REFRESH_MARGIN_SECS",
        "refresh access tokens this long before they end [900]",
    ),
    (
        "CHORUS_PUBLISHING__EXPIRY_REMINDER_SECS",
        "tell the advocate this long before an authorisation only they can renew ends [604800]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__WINDOW_POSTS",
        "per-account posts in the short window, 0 = none (each network: LINKEDIN, X, FACEBOOK, INSTAGRAM, MASTODON, BLUESKY) [0]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__WINDOW_SECS",
        "length of the short window [0]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__READS_PER_MINUTE",
        "metrics reads per minute for the application [600]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__API_BASE_URL",
        "LinkedIn API base URL [netsim]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__AUTH_BASE_URL",
        "LinkedIn OAuth base URL [netsim]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__CLIENT_ID",
        "LinkedIn app client id",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__CLIENT_SECRET",
        "LinkedIn app client secret",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__API_VERSION",
        "LinkedIn-Version header [202601]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__POSTS_PER_ACCOUNT_PER_DAY",
        "per-account publish quota [150]",
    ),
    (
        "CHORUS_PUBLISHING__LINKEDIN__POSTS_PER_APP_PER_DAY",
        "per-application publish quota [100000]",
    ),
    (
        "CHORUS_ENGAGEMENT__POLL_SCHEDULE_SECS",
        "delays after publication at which metrics are polled [3600,21600,86400,259200,604800,2592000]",
    ),
    (
        "CHORUS_GAMIFICATION__POINTS_<ACTION>",
        "points per share, click, reaction, comment, reshare, submission_approved, survey_answered, onboarding_completed: version 1 of each tenant's rules [10, 20, 15, 30, 25, 50, 5, 20]",
    ),
    (
        "CHORUS_NOTIFICATIONS__WEBHOOK_RETRY_SCHEDULE_MS",
        "delays before the retries of an integrator webhook, jittered ±20% [5000,300000,1800000,7200000,18000000,36000000,36000000]",
    ),
    (
        "CHORUS_NOTIFICATIONS__WEBHOOK_DISABLE_AFTER_SECS",
        "an endpoint failing this long is disabled when a message exhausts its retries [432000]",
    ),
    (
        "CHORUS_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS",
        "time allowed for one webhook request [15000]",
    ),
    (
        "CHORUS_NOTIFICATIONS__WEBHOOK_CONCURRENCY",
        "webhook deliveries in flight at once [32]",
    ),
    (
        "CHORUS_NOTIFICATIONS__SMTP_URL",
        "SMTP server of e-mail notifications: smtps://user:pass@host:465, smtp://user:pass@host:587?tls=required or smtp://host:25; no e-mail when unset",
    ),
    (
        "CHORUS_NOTIFICATIONS__EMAIL_FROM",
        "sender of e-mail notifications [Chorus <notifications@chorus.localhost>]",
    ),
    (
        "CHORUS_NOTIFICATIONS__CHANNEL_RETRY_SCHEDULE_MS",
        "delays before the retries of an e-mail, Slack or Teams notification, jittered ±20% [10000,60000,300000,1800000,7200000,21600000]",
    ),
    (
        "CHORUS_NOTIFICATIONS__CHANNEL_TIMEOUT_MS",
        "time allowed for one e-mail, Slack or Teams request [15000]",
    ),
    (
        "CHORUS_NOTIFICATIONS__DIGEST_TIME",
        "local time (HH:MM, each person's time zone) when daily and weekly (Monday) digests go out [08:00]",
    ),
    (
        "CHORUS_NOTIFICATIONS__FCM_PROJECT_ID",
        "Firebase project of mobile push (FCM HTTP v1); no FCM when unset",
    ),
    (
        "CHORUS_NOTIFICATIONS__FCM_SERVICE_ACCOUNT_FILE",
        "JSON key file of the Firebase service account",
    ),
    (
        "CHORUS_NOTIFICATIONS__FCM_ENDPOINT",
        "base URL of the FCM HTTP v1 API [https://fcm.googleapis.com]",
    ),
    (
        "CHORUS_NOTIFICATIONS__APNS_TEAM_ID",
        "Apple team id of APNs provider tokens; no APNs when unset",
    ),
    (
        "CHORUS_NOTIFICATIONS__APNS_KEY_ID",
        "key id of the APNs signing key",
    ),
    (
        "CHORUS_NOTIFICATIONS__APNS_KEY_FILE",
        "APNs signing key file (AuthKey_<key id>.p8)",
    ),
    (
        "CHORUS_NOTIFICATIONS__APNS_TOPIC",
        "the iOS app's bundle id",
    ),
    (
        "CHORUS_NOTIFICATIONS__APNS_ENDPOINT",
        "base URL of APNs [https://api.push.apple.com]",
    ),
    (
        "CHORUS_NOTIFICATIONS__FAILURE_ALERT_RATIO",
        "admins are alerted when this share of publishing outcomes in the current and previous hour failed [0.2]",
    ),
    (
        "CHORUS_NOTIFICATIONS__FAILURE_ALERT_MIN_FAILURES",
        "…and at least this many shares failed [5]",
    ),
    (
        "CHORUS_NOTIFICATIONS__FAILURE_ALERT_COOLDOWN_SECS",
        "at most one failure-rate alert per tenant in this time [21600]",
    ),
    (
        "CHORUS_SECURITY__DEV_SIGNING_KEY",
        "HS256 key for development tokens; generated into the data folder when unset",
    ),
    (
        "CHORUS_SECURITY__ENCRYPTION_KEYS",
        "kid:base64(32 bytes)[,…] encrypting social tokens; the first encrypts",
    ),
    (
        "CHORUS_SECURITY__VISITOR_SALT",
        "salt of unique-visitor hashes",
    ),
    (
        "CHORUS_SECURITY__OIDC_ISSUER",
        "OpenID Connect issuer whose RS256/ES256 tokens the gateway accepts (JWKS from its discovery document)",
    ),
    (
        "CHORUS_SECURITY__OIDC_AUDIENCE",
        "audience the OIDC tokens must name",
    ),
    (
        "CHORUS_SECURITY__OIDC_TENANT_CLAIM",
        "claim naming the tenant [chorus_tenant]",
    ),
    (
        "CHORUS_SECURITY__OIDC_USER_CLAIM",
        "claim naming the user id [sub]",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then the file (if any), then `CHORUS_*` variables, and validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, Figment::new())
    }

    /// Like `load`, with extra overrides merged last (tests and the demo use it).
    pub fn load_with(file: Option<&Path>, overrides: Figment) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(
                Env::prefixed("CHORUS_")
                    .split("__")
                    .ignore(&["config"])
                    .lowercase(true),
            )
            .merge(overrides);
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError::Load(Box::new(error)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, address) in [
            ("gateway.listen", &self.gateway.listen),
            ("netsim.listen", &self.netsim.listen),
            ("admin_listen", &self.admin_listen),
        ] {
            if address.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be host:port, got {address:?}"
                )));
            }
        }
        if !matches!(self.log_format.as_str(), "json" | "pretty") {
            return Err(ConfigError::Invalid(format!(
                "log_format must be json or pretty, got {:?}",
                self.log_format
            )));
        }
        if url::Url::parse(&self.public_url).is_err() {
            return Err(ConfigError::Invalid(format!(
                "public_url must be a URL, got {:?}",
                self.public_url
            )));
        }
        if self.notifications.webhook_retry_schedule_ms.is_empty()
            || self.notifications.webhook_concurrency == 0
            || self.notifications.webhook_timeout_ms == 0
        {
            return Err(ConfigError::Invalid(
                "notifications: webhook_retry_schedule_ms needs at least one delay, webhook_concurrency and webhook_timeout_ms at least 1".into(),
            ));
        }
        if self.scheduling.batch_size == 0 {
            return Err(ConfigError::Invalid(
                "scheduling.batch_size must be at least 1".into(),
            ));
        }
        if self.scheduling.redrive_after_secs == 0 || self.scheduling.sweep_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "scheduling.redrive_after_secs and scheduling.sweep_interval_ms must be at least 1"
                    .into(),
            ));
        }
        if self.scheduling.emit_lead_ms > 10_000 {
            return Err(ConfigError::Invalid(format!(
                "scheduling.emit_lead_ms must be at most 10000 (a share cannot be edited once handed over), got {}",
                self.scheduling.emit_lead_ms
            )));
        }
        if self.publishing.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "publishing.concurrency must be at least 1".into(),
            ));
        }
        if self.publishing.max_attempts < 1 || self.publishing.retry_delays_ms.is_empty() {
            return Err(ConfigError::Invalid(
                "publishing.max_attempts must be at least 1 and publishing.retry_delays_ms must name at least one delay".into(),
            ));
        }
        if !(4..=3_600).contains(&self.publishing.lease_secs) {
            return Err(ConfigError::Invalid(format!(
                "publishing.lease_secs must be between 4 and 3600, got {}",
                self.publishing.lease_secs
            )));
        }
        Ok(())
    }

    /// Database URL of a service: the configured one or a SQLite file in the data folder.
    pub fn database_url(&self, service: &str) -> String {
        let configured = match service {
            "identity" => &self.identity.database_url,
            "content" => &self.content.database_url,
            "scheduling" => &self.scheduling.database_url,
            "publishing" => &self.publishing.database_url,
            "engagement" => &self.engagement.database_url,
            "gamification" => &self.gamification.database_url,
            "notifications" => &self.notifications.database_url,
            _ => &None,
        };
        configured.clone().unwrap_or_else(|| {
            let path = self.data_dir.join(format!("{service}.db"));
            format!("sqlite://{}?mode=rwc", path.display())
        })
    }

    /// Base URL of the simulated networks, as seen from this process.
    pub fn netsim_url(&self) -> String {
        format!("http://{}", self.netsim.listen)
    }

    pub fn oauth_redirect_url(&self) -> String {
        self.publishing
            .oauth_redirect_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "{}/v1/accounts/callback",
                    self.public_url.trim_end_matches('/')
                )
            })
    }
}

// Secrets are serialised only to seed figment with the defaults; `Debug` stays redacted.
fn expose_secret<S: serde::Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn expose_optional_secret<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// Environment values such as `202601` arrive as numbers; settings that are text accept them.
fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Integer(number) => number.to_string(),
        TextOrNumber::Float(number) => number.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults_and_digits_stay_text() {
        let overrides = Figment::new()
            .merge(("publishing.linkedin.api_version", 202604))
            .merge(("gateway.listen", "0.0.0.0:8080"));
        let config = Config::load_with(None, overrides).unwrap();
        assert_eq!(config.publishing.linkedin.api_version, "202604");
        assert_eq!(config.gateway.listen, "0.0.0.0:8080");
        let bad = Figment::new().merge(("gateway.listen", "nowhere"));
        assert!(
            Config::load_with(None, bad)
                .unwrap_err()
                .to_string()
                .contains("gateway.listen")
        );
    }

    #[test]
    fn the_emit_lead_and_the_publisher_concurrency_are_bounded() {
        let config = Config::load_with(None, Figment::new()).unwrap();
        assert_eq!(config.scheduling.emit_lead_ms, 2_000);
        assert_eq!(config.publishing.concurrency, 32);
        for (key, value, named) in [
            ("scheduling.emit_lead_ms", 10_001, "scheduling.emit_lead_ms"),
            ("publishing.concurrency", 0, "publishing.concurrency"),
            ("publishing.lease_secs", 3, "publishing.lease_secs"),
        ] {
            let error = Config::load_with(None, Figment::new().merge((key, value)))
                .unwrap_err()
                .to_string();
            assert!(error.contains(named), "{key}={value}: {error}");
        }
        let none = Config::load_with(None, Figment::new().merge(("scheduling.emit_lead_ms", 0)));
        assert_eq!(none.unwrap().scheduling.emit_lead_ms, 0);
    }
}

#[cfg(test)]
mod published_networks_tests {
    use super::Config;

    #[test]
    fn publish_networks_lists_enabled_networks_or_none() {
        let mut config = Config::default();
        let every = config.publishing.published_networks().unwrap();
        assert!(
            every.contains(&"linkedin") && every.contains(&"x"),
            "{every:?}"
        );
        config.publishing.publish_networks = " x, linkedin ,x".into();
        assert_eq!(
            config.publishing.published_networks().unwrap(),
            vec!["x", "linkedin"]
        );
        config.publishing.publish_networks = "none".into();
        assert!(config.publishing.published_networks().unwrap().is_empty());
        config.publishing.publish_networks = "myspace".into();
        assert!(
            config
                .publishing
                .published_networks()
                .unwrap_err()
                .contains("unknown network \"myspace\"")
        );
        config.publishing.publish_networks = "x".into();
        config.publishing.x.enabled = false;
        assert!(
            config
                .publishing
                .published_networks()
                .unwrap_err()
                .contains("x is not enabled")
        );
    }
}
