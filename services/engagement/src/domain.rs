//! Pure analytics logic: days in the tenant's time zone, figures, earned media value.

use chorus_api::engagement::{Figures, NetworkRates};
use std::collections::BTreeMap;

/// The day of `at` in `time_zone` (UTC when the zone is unknown), `YYYY-MM-DD`.
pub fn day_of(at: chrono::DateTime<chrono::Utc>, time_zone: &str) -> String {
    match time_zone.parse::<chrono_tz::Tz>() {
        Ok(zone) => at.with_timezone(&zone).format("%Y-%m-%d").to_string(),
        Err(_) => at.format("%Y-%m-%d").to_string(),
    }
}

pub fn valid_time_zone(time_zone: &str) -> bool {
    time_zone.parse::<chrono_tz::Tz>().is_ok()
}

/// Default ad rates (per network) that EMV compares with; tenants set their own.
pub fn default_rates() -> Vec<NetworkRates> {
    [
        ("linkedin", 30.0, 5.0),
        ("x", 6.0, 0.5),
        ("facebook", 7.0, 1.0),
        ("instagram", 8.0, 1.2),
        ("mastodon", 2.0, 0.2),
        ("bluesky", 2.0, 0.2),
    ]
    .into_iter()
    .map(|(network, cpm, cpc)| NetworkRates {
        network: network.to_string(),
        cpm,
        cpc,
    })
    .collect()
}

pub const FORMULA: &str =
    "EMV = CPM x impressions / 1000 + CPC x (clicks + reaction weight x reactions), per network";

/// Sums of each metric for one network.
pub type MetricSums = BTreeMap<String, i64>;

fn get(sums: &MetricSums, metric: &str) -> i64 {
    sums.get(metric).copied().unwrap_or(0)
}

/// EMV of one network's sums.
pub fn emv(sums: &MetricSums, rates: Option<&NetworkRates>, reaction_weight: f64) -> f64 {
    let Some(rates) = rates else { return 0.0 };
    rates.cpm * get(sums, "impression") as f64 / 1000.0
        + rates.cpc * (get(sums, "click") as f64 + reaction_weight * get(sums, "reaction") as f64)
}

/// Figures from sums per network.
pub fn figures(
    by_network: &BTreeMap<String, MetricSums>,
    rates: &[NetworkRates],
    reaction_weight: f64,
) -> Figures {
    let mut figures = Figures::default();
    let mut value = 0.0;
    for (network, sums) in by_network {
        figures.shares += get(sums, "share");
        figures.clicks += get(sums, "click");
        figures.bot_clicks += get(sums, "bot_click");
        figures.unique_visitors += get(sums, "unique_visitor");
        figures.reactions += get(sums, "reaction");
        figures.comments += get(sums, "comment");
        figures.reshares += get(sums, "reshare");
        figures.impressions += get(sums, "impression");
        value += emv(
            sums,
            rates.iter().find(|rate| &rate.network == network),
            reaction_weight,
        );
    }
    if figures.impressions > 0 {
        let engaged = figures.clicks + figures.reactions + figures.comments + figures.reshares;
        figures.engagement_rate = Some(round2(engaged as f64 * 100.0 / figures.impressions as f64));
    }
    figures.emv = round2(value);
    figures
}

pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Interest of a group, for "top" lists: what people did, not what they saw.
pub fn engagement_score(figures: &Figures) -> i64 {
    figures.clicks + figures.reactions + figures.comments + figures.reshares
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_follow_the_tenant_time_zone() {
        let late_evening_utc = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 23, 30, 0)
            .unwrap();
        assert_eq!(day_of(late_evening_utc, "UTC"), "2026-11-23");
        assert_eq!(day_of(late_evening_utc, "Europe/Paris"), "2026-11-24");
        assert_eq!(day_of(late_evening_utc, "America/New_York"), "2026-11-23");
        assert!(!valid_time_zone("Mars/Olympus"));
    }

    #[test]
    fn emv_and_engagement_rate_follow_the_formula() {
        let mut linkedin = MetricSums::new();
        linkedin.insert("impression".into(), 2_000);
        linkedin.insert("click".into(), 10);
        linkedin.insert("reaction".into(), 8);
        linkedin.insert("comment".into(), 2);
        let mut by_network = BTreeMap::new();
        by_network.insert("linkedin".to_string(), linkedin);
        let rates = vec![NetworkRates {
            network: "linkedin".into(),
            cpm: 30.0,
            cpc: 5.0,
        }];
        // 30 x 2000 / 1000 + 5 x (10 + 0.25 x 8) = 60 + 60 = 120; (10 + 8 + 2) / 2000 = 1%.
        let result = figures(&by_network, &rates, 0.25);
        assert_eq!(result.emv, 120.0);
        assert_eq!(result.engagement_rate, Some(1.0));
    }
}
