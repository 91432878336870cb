//! `chorus`: every Chorus service in one binary.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "chorus",
    version,
    about = "Employee advocacy platform: every service in one binary"
)]
struct Cli {
    /// TOML configuration file (settings can also come from CHORUS_* variables)
    #[arg(long, global = true, env = "CHORUS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run services: `all`, or a comma-separated list of targets
    #[command(after_help = environment_help())]
    Run {
        #[arg(long, default_value = "all")]
        target: String,
    },
    /// Start everything on the embedded default and play a company's advocacy program:
    /// advocates in several cities and languages sharing on five simulated networks, with
    /// faults, engagement, a contest, points, badges and notifications; then the report
    Demo {
        /// Number of advocates (the shares, clicks and accounts scale with them)
        #[arg(long, default_value_t = 200)]
        advocates: usize,
        /// Leave the API running after the demo
        #[arg(long)]
        keep_running: bool,
        /// Seconds over which the scheduled shares fall due
        #[arg(long, default_value_t = 20)]
        schedule_over: u64,
    },
    /// Measure: bus baseline, feed latency, ... (appends to BENCHMARKS.md)
    Bench {
        /// all, bus, feed, redirect, ingest, leaderboard, pipeline, overhead, lateness, efficiency, api, memory, notifications
        #[arg(default_value = "all")]
        scenario: String,
        /// Small sizes, for a smoke run
        #[arg(long)]
        quick: bool,
        /// Do not append the results to BENCHMARKS.md
        #[arg(long)]
        no_record: bool,
        /// PostgreSQL server (an admin URL) on which `lateness` also runs, in fresh databases
        #[arg(long, env = "CHORUS_TEST_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// Send HTTP load to a URL at a fixed rate or concurrency and print a JSON report (used by `bench`)
    #[command(hide = true)]
    Load {
        #[arg(long)]
        url: String,
        /// Requests per second (open loop)
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Requests in flight, each sent when the previous answer arrived (closed loop: the
        /// highest rate reached); replaces --rate
        #[arg(long)]
        concurrency: Option<u32>,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// The status that counts as success
        #[arg(long, default_value_t = 200)]
        status: u16,
        #[arg(long, default_value = "GET")]
        method: String,
        /// `Name: value` (repeatable)
        #[arg(long = "header")]
        headers: Vec<String>,
        /// JSON body of every request
        #[arg(long)]
        body: Option<String>,
        /// A header given a fresh UUID on every request (e.g. Idempotency-Key)
        #[arg(long)]
        unique_header: Option<String>,
    },
    /// Apply database migrations of the given services
    Migrate {
        #[arg(long, default_value = "all")]
        target: String,
    },
    /// Mint a development bearer token
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        /// admin, curator, approver, advocate, integrator or operator (repeatable)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
    /// Print the OpenAPI document of the gateway
    Openapi,
}

fn environment_help() -> String {
    let mut help = String::from("Environment (every setting; nested keys use `__`):\n");
    for (name, description) in chorus_kit::config::ENVIRONMENT {
        help.push_str(&format!("  {name:<52} {description}\n"));
    }
    help.push_str(&format!("\nTargets: {}", chorus::TARGETS.join(", ")));
    help
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = chorus_kit::Config::load(cli.config.as_deref())?;
    let log_output = if config.log_format == "json" {
        chorus_telemetry::LogOutput::Json
    } else {
        chorus_telemetry::LogOutput::Pretty
    };
    // Commands that print for a person keep the services' logs to what needs attention
    // (the demo's own injected faults would otherwise warn between its progress bars).
    let quiet_level = match cli.command {
        Command::Demo { .. } => Some("error"),
        Command::Bench { .. } | Command::Load { .. } => Some("warn"),
        _ => None,
    };
    let options = chorus_telemetry::Options {
        service_name: "chorus".to_string(),
        log_output,
        log_filter: match quiet_level {
            Some(level) if std::env::var_os("CHORUS_LOG").is_none() => level.to_string(),
            _ => config.log.clone(),
        },
        otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|value| !value.is_empty()),
    };
    // Without a collector, the demo records the one trace it follows itself.
    let demo_traces = (matches!(cli.command, Command::Demo { .. })
        && options.otlp_endpoint.is_none())
    .then(chorus::demo::traces::TraceRecorder::default);
    let provider = demo_traces
        .as_ref()
        .map(chorus::demo::traces::TraceRecorder::provider);
    let mut telemetry = chorus_telemetry::init(&options, provider)?;
    let outcome = match cli.command {
        Command::Run { target } => {
            let targets = chorus::parse_targets(&target)?;
            let shutdown = chorus_kit::Shutdown::new();
            let running = chorus::start(config, &targets, shutdown.clone()).await?;
            tracing::info!(targets = %targets.join(","), nats = %running.nats_url, admin = %running.admin_address, "chorus running");
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
            match tokio::time::timeout(std::time::Duration::from_secs(20), running.join()).await {
                Ok(outcome) => outcome,
                Err(_) => anyhow::bail!("services did not stop within 20 s"),
            }
        }
        Command::Demo {
            advocates,
            keep_running,
            schedule_over,
        } => chorus::demo::run(
            config,
            chorus::demo::DemoOptions {
                advocates,
                keep_running,
                schedule_over: std::time::Duration::from_secs(schedule_over),
                traces: demo_traces,
            },
        )
        .await
        .map(|_| ()),
        Command::Bench {
            scenario,
            quick,
            no_record,
            postgres,
        } => {
            // The program as `chorus` whatever its path, and no database URL (it may carry a
            // password) in the record.
            let mut words = vec!["chorus".to_string()];
            let mut hide_next = false;
            for word in std::env::args().skip(1) {
                if hide_next {
                    words.push("<url>".into());
                    hide_next = false;
                } else if let Some((flag, _)) = word.split_once('=')
                    && flag == "--postgres"
                {
                    words.push("--postgres=<url>".into());
                } else {
                    hide_next = word == "--postgres";
                    words.push(word);
                }
            }
            let command_line = words.join(" ");
            let options = chorus::bench::BenchOptions {
                scenario,
                quick,
                record: (!no_record).then(|| std::path::PathBuf::from("BENCHMARKS.md")),
                command_line,
                postgres: postgres.filter(|url| !url.is_empty()),
            };
            chorus::bench::run(config, options).await
        }
        Command::Load {
            url,
            rate,
            concurrency,
            seconds,
            status,
            method,
            headers,
            body,
            unique_header,
        } => {
            let shape = chorus::load::RequestShape {
                method: reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| anyhow::anyhow!("unknown HTTP method {method:?}"))?,
                body: body.map(bytes::Bytes::from),
                unique_header: unique_header
                    .map(|name| reqwest::header::HeaderName::try_from(name.as_str()))
                    .transpose()?,
                ..chorus::load::RequestShape::get(&url, status)
            }
            .with_header_lines(&headers)?;
            let pace = match concurrency {
                Some(workers) => chorus::load::Pace::Concurrency { workers },
                None => chorus::load::Pace::Rate { rate },
            };
            let report = chorus::load::run_shaped(shape, pace, seconds).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Migrate { target } => {
            let targets = chorus::parse_targets(&target)?;
            chorus::migrate(&config, &targets).await
        }
        Command::Token {
            tenant,
            user,
            roles,
            ttl_hours,
        } => {
            let mut parsed = Vec::new();
            for role in &roles {
                parsed.push(
                    chorus_kit::Role::parse(role)
                        .ok_or_else(|| anyhow::anyhow!("unknown role {role:?}"))?,
                );
            }
            let secrets = chorus_kit::auth::Secrets::resolve(&config)?;
            let token = chorus_kit::auth::mint(
                &secrets.dev_signing_key_bytes(),
                &tenant,
                &user,
                &parsed,
                chrono::Duration::hours(ttl_hours),
            );
            println!("{token}");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", chorus_gateway::openapi_json());
            Ok(())
        }
    };
    telemetry.shutdown();
    outcome
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
