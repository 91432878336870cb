//! The gamification service's tables.

macro_rules! entity {
    ($module:ident, $table:literal, { $($body:tt)* }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($body)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

// Append-only: rows are never updated; corrections are new rows.
entity!(ledger, "ledger", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub user_id: String,
    pub points: i64,
    pub requested_points: i64,
    /// Shares, clicks, reactions... the entry stands for (negative for corrections).
    pub units: i64,
    pub action: String,
    pub source_event_id: String,
    pub share_id: Option<String>,
    pub post_id: Option<String>,
    pub rule_version: i64,
    /// UTC day and ISO week of `awarded_at`, for caps and streaks.
    pub day: String,
    pub week: String,
    /// When the rewarded fact happened (not when it was processed), so replays agree.
    pub awarded_at: DateTimeUtc,
});

// Running totals of the ledger per (user, action, scope), moved with each entry in its
// transaction: what caps and badge thresholds read instead of summing the ledger. Scope is
// `all`, `day:<UTC day>` or `post:<post id>`; always equal to the ledger's sums (derived).
entity!(tally, "tallies", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub action: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    pub points: i64,
    pub units: i64,
});

entity!(balance, "balances", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub balance: i64,
});

entity!(rule_version, "rule_versions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    pub effective_from: DateTimeUtc,
    /// JSON of `chorus_api::gamification::PointRules`.
    pub rules: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
});

entity!(member, "members", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub display_name: String,
    pub department: String,
    pub active: bool,
    pub hide_name: bool,
});

entity!(score, "scores", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// `all`, `week:2026-W48`, `month:2026-11` or `contest:<id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub department: String,
    /// False once the member is deactivated or erased.
    pub visible: bool,
    pub points: i64,
});

entity!(badge, "badges", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub badge: String,
    pub title: String,
    pub earned_at: DateTimeUtc,
    pub granted_by: Option<String>,
});

entity!(post, "posts", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: String,
    /// JSON array of topics.
    pub topics: String,
});

entity!(contest, "contests", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    pub metric: String,
    pub topic: Option<String>,
    /// JSON array of post ids.
    pub post_ids: String,
    pub teams: bool,
    pub finished: bool,
    /// Whether `contest_started` and `contest_ending` were announced.
    pub started_announced: bool,
    pub ending_announced: bool,
    /// JSON array of frozen `ContestStanding`s.
    pub results: Option<String>,
    pub created_by: String,
});

entity!(reward, "rewards", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub cost: i64,
    pub created_by: String,
});

entity!(redemption, "redemptions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub reward_id: String,
    pub reward_name: String,
    pub cost: i64,
    /// pending, approved or rejected.
    pub status: String,
    pub requested_at: DateTimeUtc,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
});
