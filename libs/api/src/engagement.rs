//! Engagement and analytics: count the impressed, not the impressions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveLink {
    pub code: String,
}

/// A network said that posts of its changed (a verified webhook): their metrics are read
/// again now rather than at the next scheduled poll.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkActivity {
    pub network: String,
    /// The network's ids of the posts that changed.
    pub external_ids: Vec<String>,
}

/// How many tracked shares a network's activity matched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkActivityAccepted {
    pub matched: u64,
}

/// Where a tracked link leads (stored in the links key-value bucket under its code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkTarget {
    pub tenant_id: String,
    pub share_id: String,
    pub target_url: String,
}

/// Engagement totals of one share.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShareStats {
    pub share_id: String,
    pub clicks: i64,
    pub bot_clicks: i64,
    pub unique_visitors: i64,
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
}

/// A period in the tenant's time zone, both days included (default: the last 30 days).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<chrono::NaiveDate>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<chrono::NaiveDate>,
    /// `csv` for a CSV file instead of JSON.
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Share,
    Post,
    Advocate,
    Department,
    Network,
    Topic,
    Day,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// What to group by.
    pub by: Dimension,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    /// `csv` for a CSV file instead of JSON.
    pub format: Option<String>,
}

/// The figures of a program, a group or a person over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub shares: i64,
    /// Clicks on tracked links by people.
    pub clicks: i64,
    /// Clicks by link-preview bots and crawlers, counted apart.
    pub bot_clicks: i64,
    /// Distinct visitors per share and day.
    pub unique_visitors: i64,
    pub reactions: i64,
    pub comments: i64,
    pub reshares: i64,
    pub impressions: i64,
    /// (clicks + reactions + comments + reshares) / impressions, in percent.
    pub engagement_rate: Option<f64>,
    /// Earned media value (see `emv` for the formula and rates).
    pub emv: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BreakdownRow {
    /// The group: a share, post or user id, a department, network, topic or day.
    pub key: String,
    /// A readable name for it (post title, advocate's name).
    pub label: String,
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkRates {
    pub network: String,
    /// Cost per thousand impressions the tenant would pay for ads.
    pub cpm: f64,
    /// Cost per click.
    pub cpc: f64,
}

/// How earned media value is computed, shown next to the figure.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmvExplained {
    pub value: f64,
    pub currency: String,
    pub formula: String,
    pub reaction_weight: f64,
    pub rates: Vec<NetworkRates>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"time_zone": "Europe/Paris", "currency": "EUR", "reaction_weight": 0.25,
    "rates": [{"network": "linkedin", "cpm": 30.0, "cpc": 5.0}]}))]
pub struct AnalyticsSettings {
    /// IANA time zone for day boundaries.
    pub time_zone: String,
    pub currency: String,
    /// How many clicks one reaction is worth in EMV.
    pub reaction_weight: f64,
    pub rates: Vec<NetworkRates>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgramSummary {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub time_zone: String,
    pub figures: Figures,
    /// Sum of the audiences of the advocates who shared, once per advocate and network.
    pub potential_reach: i64,
    /// Enabled advocates.
    pub advocates: u64,
    /// Advocates who shared in the period.
    pub sharers: u64,
    /// Advocates whose content submission was approved in the period.
    pub creators: u64,
    /// Advocates who neither shared nor created.
    pub lurkers: u64,
    /// sharers / advocates, in percent.
    pub active_advocates_percent: f64,
    pub emv: EmvExplained,
    pub top_posts: Vec<BreakdownRow>,
    pub top_advocates: Vec<BreakdownRow>,
}

/// An advocate's own results: their reach, clicks and engagement, day by day.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonalDashboard {
    pub user_id: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub figures: Figures,
    pub potential_reach: i64,
    pub emv: EmvExplained,
    pub trend: Vec<BreakdownRow>,
    pub top_posts: Vec<BreakdownRow>,
}
