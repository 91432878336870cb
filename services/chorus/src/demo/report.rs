//! What `chorus demo` prints at the end, every figure read back from the API (analytics,
//! leaderboard, contest, the advocates' shares, badges and notifications) or from the
//! services' own metrics (retries and rate-limit waits), never counted by the demo.

use super::traces;
use chorus_api::engagement::{BreakdownRow, ProgramSummary};
use chorus_api::gamification::{Contest, Leaderboard};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Publishing outcomes of one network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkOutcome {
    /// Shares the advocates asked for on this network.
    pub shares: usize,
    pub published: usize,
    /// Not yet final when the report was read (scheduled or due).
    pub pending: usize,
    pub failed: usize,
    pub needs_reconnect: usize,
    pub cancelled: usize,
    /// Given up without knowing whether the post exists (an administrator resolves them).
    pub unconfirmed: usize,
    /// Attempts that failed for a transient reason and were retried (publisher metrics).
    pub retried: u64,
    /// Refusals for a rate limit, each followed by a wait (publisher metrics).
    pub rate_limited: u64,
    /// Seconds publishers waited for a rate limit or a window (publisher metrics).
    pub limit_wait_secs: f64,
    /// Why shares did not publish, in the network's words, with how many.
    pub reasons: BTreeMap<String, usize>,
}

/// The trace of one share, from its creation through its publication.
#[derive(Debug, Clone)]
pub struct TraceReport {
    pub trace_id: String,
    pub share_id: String,
    pub network: String,
    /// The share's status as the API tells it.
    pub status: String,
    /// Spans per service, when the demo recorded the trace itself.
    pub spans_per_service: Option<BTreeMap<String, usize>>,
    /// Whether a `publish` span of the share is in the trace (when recorded).
    pub publish_span_seen: Option<bool>,
}

/// Everything the demo prints at the end.
#[derive(Debug, Clone)]
pub struct Report {
    pub company: String,
    pub advocates: usize,
    pub cities: usize,
    pub languages: usize,
    pub departments: usize,
    /// Connected accounts per network.
    pub accounts: BTreeMap<String, usize>,
    pub posts: usize,
    pub summary: ProgramSummary,
    /// Analytics figures per network.
    pub by_network: Vec<BreakdownRow>,
    pub leaderboard: Leaderboard,
    pub contest: Option<Contest>,
    pub outcomes: BTreeMap<String, NetworkOutcome>,
    /// Badges earned, by badge.
    pub badges: BTreeMap<String, usize>,
    /// In-app notifications delivered, by kind.
    pub notifications: BTreeMap<String, usize>,
    pub trace: Option<TraceReport>,
    pub api_url: String,
    pub docs_url: String,
    pub metrics_url: String,
    pub elapsed_secs: f64,
    /// Wall time of each phase of the demo, in order (the report's own phase excluded).
    pub phases: Vec<(String, f64)>,
}

fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0 { format!("-{out}") } else { out }
}

/// An amount with grouped thousands and two decimals.
fn money(value: f64) -> String {
    let cents = (value * 100.0).round() as i64;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.abs();
    format!("{sign}{}.{:02}", thousands(cents / 100), cents % 100)
}

impl Report {
    /// Totals over every network.
    pub fn total(&self) -> NetworkOutcome {
        let mut total = NetworkOutcome::default();
        for outcome in self.outcomes.values() {
            total.shares += outcome.shares;
            total.published += outcome.published;
            total.pending += outcome.pending;
            total.failed += outcome.failed;
            total.needs_reconnect += outcome.needs_reconnect;
            total.cancelled += outcome.cancelled;
            total.unconfirmed += outcome.unconfirmed;
            total.retried += outcome.retried;
            total.rate_limited += outcome.rate_limited;
            total.limit_wait_secs += outcome.limit_wait_secs;
        }
        total
    }

    /// The report as printed.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let summary = &self.summary;
        let figures = &summary.figures;
        let total = self.total();
        let _ = writeln!(
            out,
            "\nProgram dashboard: {} ({} to {}, {})",
            self.company, summary.from, summary.to, summary.time_zone
        );
        let _ = writeln!(
            out,
            "  potential reach      {} people (audiences of the {} advocates who shared)",
            thousands(summary.potential_reach),
            summary.sharers
        );
        let _ = writeln!(
            out,
            "  shares               {} published on {} networks ({} asked for)",
            thousands(figures.shares),
            self.by_network.len(),
            total.shares
        );
        let _ = writeln!(
            out,
            "  clicks               {} by people, {} unique visitors ({} link-preview bots left out)",
            thousands(figures.clicks),
            thousands(figures.unique_visitors),
            thousands(figures.bot_clicks)
        );
        let _ = writeln!(
            out,
            "  engagement rate      {} ({} reactions, {} comments, {} reshares, {} clicks on {} impressions)",
            figures
                .engagement_rate
                .map(|rate| format!("{rate:.2}%"))
                .unwrap_or_else(|| "n/a".into()),
            thousands(figures.reactions),
            thousands(figures.comments),
            thousands(figures.reshares),
            thousands(figures.clicks),
            thousands(figures.impressions)
        );
        let _ = writeln!(
            out,
            "  active advocates     {:.1}% ({} sharers, {} creators, {} not yet active, of {})",
            summary.active_advocates_percent,
            summary.sharers,
            summary.creators,
            summary.lurkers,
            summary.advocates
        );
        let _ = writeln!(
            out,
            "  earned media value   {} {} ({})",
            money(summary.emv.value),
            summary.emv.currency,
            summary.emv.formula
        );

        let _ = writeln!(
            out,
            "\nLeaderboard (points, {})",
            match self.leaderboard.period.as_str() {
                "all" => "all time",
                other => other,
            }
        );
        for standing in &self.leaderboard.top {
            let _ = writeln!(
                out,
                "  {:>3}. {:<24} {:<12} {:>5} points",
                standing.rank,
                standing.display_name,
                standing.department.as_deref().unwrap_or(""),
                standing.points
            );
        }
        if let Some(contest) = &self.contest {
            let _ = writeln!(
                out,
                "\nContest \"{}\" ({:?}, by {}{}, until {})",
                contest.name,
                contest.status,
                contest.metric.as_str(),
                contest
                    .topic
                    .as_deref()
                    .map(|topic| format!(" on #{topic} posts"))
                    .unwrap_or_default(),
                contest.ends_at.format("%Y-%m-%d %H:%M UTC")
            );
            for standing in contest.standings.iter().take(3) {
                let _ = writeln!(
                    out,
                    "  {:>3}. {:<24} {:>5}",
                    standing.rank, standing.display_name, standing.score
                );
            }
            if contest.standings.is_empty() {
                let _ = writeln!(out, "  no score yet");
            }
        }

        let _ = writeln!(out, "\nPublishing outcomes per network");
        let _ = writeln!(
            out,
            "  {:<10} {:>8} {:>10} {:>8} {:>13} {:>7} {:>10} {:>8}",
            "network",
            "accounts",
            "published",
            "retried",
            "rate-limited",
            "failed",
            "reconnect",
            "pending"
        );
        for (network, outcome) in self.outcomes.iter().chain([(&"total".to_string(), &total)]) {
            let accounts = if network == "total" {
                self.accounts.values().sum()
            } else {
                self.accounts.get(network).copied().unwrap_or(0)
            };
            let limited = if outcome.rate_limited > 0 || outcome.limit_wait_secs >= 0.05 {
                format!(
                    "{} ({:.1} s)",
                    outcome.rate_limited, outcome.limit_wait_secs
                )
            } else {
                "0".to_string()
            };
            let _ = writeln!(
                out,
                "  {:<10} {:>8} {:>10} {:>8} {:>13} {:>7} {:>10} {:>8}",
                network,
                accounts,
                format!("{}/{}", outcome.published, outcome.shares),
                outcome.retried,
                limited,
                outcome.failed,
                outcome.needs_reconnect,
                outcome.pending
            );
        }
        for (network, outcome) in &self.outcomes {
            for (reason, count) in &outcome.reasons {
                let _ = writeln!(out, "  {network}: {count} x {reason}");
            }
        }

        let join = |counts: &BTreeMap<String, usize>| {
            counts
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "\nBadges earned: {}",
            if self.badges.is_empty() {
                "none".to_string()
            } else {
                join(&self.badges)
            }
        );
        let _ = writeln!(
            out,
            "Notifications delivered: {}",
            if self.notifications.is_empty() {
                "none".to_string()
            } else {
                join(&self.notifications)
            }
        );

        let _ = writeln!(out, "\nWhere to look next");
        let _ = writeln!(out, "  API          {}", self.api_url);
        let _ = writeln!(out, "  API docs     {}", self.docs_url);
        let _ = writeln!(out, "  metrics      {}", self.metrics_url);
        if let Some(trace) = &self.trace {
            let _ = writeln!(
                out,
                "  trace id     {} (share {} on {}, {})",
                trace.trace_id, trace.share_id, trace.network, trace.status
            );
            match &trace.spans_per_service {
                Some(spans) => {
                    let count: usize = spans.values().sum();
                    let inner = spans.get(traces::NO_SERVICE).copied().unwrap_or(0);
                    let services = spans
                        .iter()
                        .filter(|(service, _)| service.as_str() != traces::NO_SERVICE)
                        .map(|(service, count)| format!("{service} {count}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let _ = writeln!(
                        out,
                        "               {count} spans from the API call to the publication and what followed it: {services}, and {inner} inner spans (storage, bus, network calls){}",
                        if trace.publish_span_seen == Some(true) {
                            ""
                        } else {
                            " (no publish span yet)"
                        }
                    );
                    let _ = writeln!(
                        out,
                        "               set OTEL_EXPORTER_OTLP_ENDPOINT to send every trace to your collector"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "               look it up in the trace backend of OTEL_EXPORTER_OTLP_ENDPOINT"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} advocates in {} cities ({} languages, {} departments), {} posts; demo finished in {:.1} s.",
            self.advocates,
            self.cities,
            self.languages,
            self.departments,
            self.posts,
            self.elapsed_secs
        );
        if !self.phases.is_empty() {
            let phases = self
                .phases
                .iter()
                .map(|(name, secs)| format!("{name} {secs:.1} s"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "Phases: {phases}.");
        }
        out
    }
}

/// Per-network counters of the publishers, from the Prometheus text of `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublisherMetrics {
    /// Attempts that ended in a transient error, per network.
    pub retried: BTreeMap<String, u64>,
    pub rate_limited: BTreeMap<String, u64>,
    pub limit_wait_secs: BTreeMap<String, f64>,
}

/// Outcomes of `chorus_publish_outcomes_total` that end a share (anything else is an
/// attempt that failed for a transient reason and was retried or given up).
const FINAL_OUTCOMES: &[&str] = &[
    "published",
    "reconciled",
    "failed",
    "needs_reconnect",
    "unconfirmed",
];

/// Reads the publishers' counters out of the Prometheus text exposition.
pub fn publisher_metrics(text: &str) -> PublisherMetrics {
    let mut metrics = PublisherMetrics::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name.trim() == key).then(|| value.trim().trim_matches('"').to_string())
            })
        };
        let Some(network) = label("network") else {
            continue;
        };
        match name {
            "chorus_publish_outcomes_total" => {
                let outcome = label("outcome").unwrap_or_default();
                if !FINAL_OUTCOMES.contains(&outcome.as_str()) {
                    *metrics.retried.entry(network).or_insert(0) += value as u64;
                }
            }
            "chorus_publish_rate_limited_total" => {
                *metrics.rate_limited.entry(network).or_insert(0) += value as u64;
            }
            "chorus_publish_rate_limit_wait_seconds_sum" => {
                *metrics.limit_wait_secs.entry(network).or_insert(0.0) += value;
            }
            _ => {}
        }
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_counters_are_read_per_network() {
        let text = r#"# HELP chorus_publish_outcomes_total Publish attempts by network and outcome
# TYPE chorus_publish_outcomes_total counter
chorus_publish_outcomes_total{network="linkedin",outcome="published"} 41
chorus_publish_outcomes_total{network="linkedin",outcome="unavailable"} 3
chorus_publish_outcomes_total{network="x",outcome="rate_limited"} 1
chorus_publish_outcomes_total{network="facebook",outcome="failed"} 1
chorus_publish_rate_limited_total{network="x"} 2
chorus_publish_rate_limit_wait_seconds_sum{network="x"} 4.5
chorus_publish_rate_limit_wait_seconds_count{network="x"} 9
chorus_other_total{network="x"} 7
"#;
        let metrics = publisher_metrics(text);
        assert_eq!(metrics.retried.get("linkedin"), Some(&3));
        assert_eq!(metrics.retried.get("x"), Some(&1));
        assert_eq!(metrics.retried.get("facebook"), None);
        assert_eq!(metrics.rate_limited.get("x"), Some(&2));
        assert_eq!(metrics.limit_wait_secs.get("x"), Some(&4.5));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-4_200), "-4,200");
        assert_eq!(money(22_276.5), "22,276.50");
        assert_eq!(money(0.999), "1.00");
        assert_eq!(money(-3.456), "-3.46");
    }
}
