//! Points, rules, leaderboards, badges and contests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    /// Points credited (after caps; negative for corrections).
    pub points: i64,
    /// Points the rule asked for before caps.
    #[serde(default)]
    pub requested_points: i64,
    pub action: String,
    pub source_event_id: String,
    pub share_id: Option<String>,
    #[serde(default)]
    pub post_id: Option<String>,
    /// The version of the tenant's rules that priced it.
    #[serde(default)]
    pub rule_version: i64,
    /// When the rewarded fact happened.
    pub awarded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointsSummary {
    pub user_id: String,
    pub balance: i64,
    /// Newest first.
    pub entries: Vec<LedgerEntry>,
}

/// Points for one unit of an action, and its caps (in points; absent = no cap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"points": 10, "daily_cap": 50, "per_post_cap": 10}))]
pub struct ActionRule {
    pub points: i64,
    /// Most points the action earns a person per UTC day.
    #[serde(default)]
    pub daily_cap: Option<i64>,
    /// Most points the action earns a person per post.
    #[serde(default)]
    pub per_post_cap: Option<i64>,
}

/// Points per action. Defaults weigh engagement above volume: a comment is worth more than
/// a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointRules {
    pub share: ActionRule,
    /// A click by a person (link-preview robots earn nothing).
    pub click: ActionRule,
    pub reaction: ActionRule,
    pub comment: ActionRule,
    pub reshare: ActionRule,
    pub submission_approved: ActionRule,
    pub survey_answered: ActionRule,
    pub onboarding_completed: ActionRule,
}

/// A new version of the tenant's rules. It applies from `effective_from` (default: now),
/// which may not be in the past: history is never rewritten.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"rules": {
    "share": {"points": 10, "daily_cap": 50, "per_post_cap": 10},
    "click": {"points": 20, "daily_cap": 2000, "per_post_cap": 1000},
    "reaction": {"points": 15, "daily_cap": 1500, "per_post_cap": 750},
    "comment": {"points": 40, "daily_cap": 1500, "per_post_cap": 750},
    "reshare": {"points": 25, "daily_cap": 1000, "per_post_cap": 500},
    "submission_approved": {"points": 50, "daily_cap": 150},
    "survey_answered": {"points": 5, "daily_cap": 15},
    "onboarding_completed": {"points": 20}},
    "effective_from": "2026-12-01T00:00:00Z"}))]
pub struct RulesInput {
    pub rules: PointRules,
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulesVersion {
    /// 1 is the installation's defaults.
    pub version: i64,
    pub effective_from: DateTime<Utc>,
    pub rules: PointRules,
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulesHistory {
    /// The version in force now.
    pub current: RulesVersion,
    /// Every version, oldest first (including future ones).
    pub versions: Vec<RulesVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Board {
    /// Everyone in the company.
    #[default]
    Company,
    /// The caller's department.
    Department,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Week,
    Month,
    AllTime,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
// Read from the query string: without this, utoipa declares the fields as path parameters.
#[into_params(parameter_in = Query)]
pub struct LeaderboardQuery {
    /// company (default) or department (the caller's).
    pub board: Option<Board>,
    /// week (default, ISO week in UTC), month or all_time.
    pub period: Option<Period>,
    /// A contest's board instead of a period.
    pub contest_id: Option<String>,
    /// Rows of the top, 1 to 100 (default 50).
    pub limit: Option<u32>,
    /// Neighbours shown above and below the caller, 0 to 10 (default 2).
    pub around: Option<u32>,
}

/// One row of a board. Advocates who hide their name appear as "an advocate", without id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Standing {
    pub rank: u64,
    pub user_id: Option<String>,
    pub display_name: String,
    pub department: Option<String>,
    pub points: i64,
    /// The caller's own row.
    pub me: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leaderboard {
    pub board: Board,
    /// `week:2026-W48`, `month:2026-11`, `all` or `contest:<id>`.
    pub period: String,
    /// The department of a department board.
    pub department: Option<String>,
    pub top: Vec<Standing>,
    /// The caller's row, absent when they have no points in the period.
    pub me: Option<Standing>,
    /// The rows around the caller (above and below), with the caller's own.
    pub neighbours: Vec<Standing>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"hide_name": true}))]
pub struct GamificationPreferences {
    /// Show "an advocate" instead of my name on boards; points are kept.
    pub hide_name: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Badge {
    /// `first_share`, `ten_shares`, `hundred_clicks`, `first_comment`, `streak_4_weeks`, ...
    pub badge: String,
    pub title: String,
    pub earned_at: DateTime<Utc>,
    /// The admin who granted a special badge.
    pub granted_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Badges {
    pub items: Vec<Badge>,
}

/// A special badge granted by an admin.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"user_id": "alice", "badge": "community_hero", "title": "Community hero"}))]
pub struct GrantBadge {
    pub user_id: String,
    /// Lowercase letters, digits and underscores.
    pub badge: String,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContestMetric {
    Points,
    Clicks,
    Shares,
}

impl ContestMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            ContestMetric::Points => "points",
            ContestMetric::Clicks => "clicks",
            ContestMetric::Shares => "shares",
        }
    }

    pub fn parse(text: &str) -> Option<ContestMetric> {
        Some(match text {
            "points" => ContestMetric::Points,
            "clicks" => ContestMetric::Clicks,
            "shares" => ContestMetric::Shares,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Hiring sprint", "starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-15T00:00:00Z",
    "metric": "clicks", "topic": "jobs", "teams": false}))]
pub struct ContestInput {
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub metric: ContestMetric,
    /// Only shares of posts with this topic count.
    #[serde(default)]
    pub topic: Option<String>,
    /// Only these posts count (empty = every post).
    #[serde(default)]
    pub post_ids: Vec<String>,
    /// Departments compete instead of individuals.
    #[serde(default)]
    pub teams: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContestStatus {
    Scheduled,
    Running,
    /// Results are frozen.
    Finished,
}

/// A contestant's place: a person (`user_id`) or a department (`team`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContestStanding {
    pub rank: u32,
    pub user_id: Option<String>,
    pub team: Option<String>,
    pub display_name: String,
    pub score: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contest {
    pub id: String,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub metric: ContestMetric,
    pub topic: Option<String>,
    pub post_ids: Vec<String>,
    pub teams: bool,
    pub status: ContestStatus,
    /// Live standings while running, frozen results once finished (ties broken by name).
    pub standings: Vec<ContestStanding>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContestRef {
    pub contest_id: String,
}

/// Something advocates can redeem points for.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Conference ticket", "cost": 500}))]
pub struct RewardInput {
    pub name: String,
    /// Points it costs, more than 0.
    pub cost: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reward {
    pub id: String,
    pub name: String,
    pub cost: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewardRef {
    pub reward_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// Points are held until an admin decides.
    Pending,
    Approved,
    /// The held points were given back.
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Redemption {
    pub id: String,
    pub user_id: String,
    pub reward_id: String,
    pub reward_name: String,
    pub cost: i64,
    pub status: RedemptionStatus,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    /// The balance after the request or the decision, for the caller's own redemptions.
    pub balance: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedemptionRef {
    pub redemption_id: String,
}
