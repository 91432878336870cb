//! Pure gamification logic: rule versions, caps, periods, streaks, badges and contest
//! ordering. No I/O and no clock: every function takes the timestamps it needs.

use chorus_api::gamification::{ActionRule, ContestMetric, PointRules};
use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// The actions that earn points, as stored in the ledger.
pub const ACTIONS: &[&str] = &[
    "share",
    "click",
    "reaction",
    "comment",
    "reshare",
    "submission_approved",
    "survey_answered",
    "onboarding_completed",
];

/// Largest number of points a rule may give for one unit.
pub const MAX_POINTS_PER_UNIT: i64 = 10_000;

/// Version 1 of every tenant's rules: points from configuration, caps that make spamming
/// shares earn little while never biting on real engagement.
pub fn default_rules(points: &chorus_kit::config::GamificationConfig) -> PointRules {
    let rule = |points: i64, daily_cap: Option<i64>, per_post_cap: Option<i64>| ActionRule {
        points,
        daily_cap,
        per_post_cap,
    };
    PointRules {
        // One share of a post counts; at most five shares a day earn points.
        share: rule(
            points.points_share,
            Some(5 * points.points_share),
            Some(points.points_share),
        ),
        click: rule(points.points_click, Some(2_000), Some(1_000)),
        reaction: rule(points.points_reaction, Some(1_500), Some(750)),
        comment: rule(points.points_comment, Some(1_500), Some(750)),
        reshare: rule(points.points_reshare, Some(1_000), Some(500)),
        submission_approved: rule(
            points.points_submission_approved,
            Some(3 * points.points_submission_approved),
            None,
        ),
        survey_answered: rule(
            points.points_survey_answered,
            Some(3 * points.points_survey_answered),
            None,
        ),
        onboarding_completed: rule(points.points_onboarding_completed, None, None),
    }
}

pub fn rule_for<'a>(rules: &'a PointRules, action: &str) -> Option<&'a ActionRule> {
    Some(match action {
        "share" => &rules.share,
        "click" => &rules.click,
        "reaction" => &rules.reaction,
        "comment" => &rules.comment,
        "reshare" => &rules.reshare,
        "submission_approved" => &rules.submission_approved,
        "survey_answered" => &rules.survey_answered,
        "onboarding_completed" => &rules.onboarding_completed,
        _ => return None,
    })
}

/// Why a rule set makes no sense, naming the action and the field.
pub fn validate_rules(rules: &PointRules) -> Result<(), String> {
    for action in ACTIONS {
        let rule = rule_for(rules, action).expect("every action has a rule");
        if rule.points < 0 {
            return Err(format!("{action}.points must not be negative"));
        }
        if rule.points > MAX_POINTS_PER_UNIT {
            return Err(format!(
                "{action}.points must be at most {MAX_POINTS_PER_UNIT}"
            ));
        }
        for (field, cap) in [
            ("daily_cap", rule.daily_cap),
            ("per_post_cap", rule.per_post_cap),
        ] {
            if let Some(cap) = cap
                && cap < 0
            {
                return Err(format!("{action}.{field} must not be negative"));
            }
        }
    }
    Ok(())
}

/// One stored version of a tenant's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesVersion {
    pub version: i64,
    pub effective_from: DateTime<Utc>,
    pub rules: PointRules,
}

/// The version in force at `at`: the latest one whose effective time has come, else the
/// defaults (version 1). `versions` may be in any order.
pub fn rules_at(
    versions: &[RulesVersion],
    defaults: &PointRules,
    at: DateTime<Utc>,
) -> RulesVersion {
    versions
        .iter()
        .filter(|version| version.effective_from <= at)
        .max_by_key(|version| (version.effective_from, version.version))
        .cloned()
        .unwrap_or_else(|| RulesVersion {
            version: 1,
            effective_from: DateTime::<Utc>::UNIX_EPOCH,
            rules: defaults.clone(),
        })
}

/// Points actually credited for `requested` points given what the action already earned
/// today and on this post. Negative corrections are never capped but never take the
/// post's total below zero.
pub fn capped_points(
    requested: i64,
    rule: &ActionRule,
    earned_today: i64,
    earned_on_post: i64,
) -> i64 {
    if requested < 0 {
        return requested.max(-earned_on_post.max(0));
    }
    let mut allowed = requested;
    if let Some(cap) = rule.daily_cap {
        allowed = allowed.min((cap - earned_today).max(0));
    }
    if let Some(cap) = rule.per_post_cap {
        allowed = allowed.min((cap - earned_on_post).max(0));
    }
    allowed
}

/// `2026-11-23` (UTC day).
pub fn day_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// `2026-W48` (ISO week, UTC).
pub fn week_key(at: DateTime<Utc>) -> String {
    let week = at.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// `2026-11` (UTC month).
pub fn month_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// Board periods an entry at `at` counts towards.
pub fn period_keys(at: DateTime<Utc>) -> [String; 3] {
    [
        "all".to_string(),
        format!("week:{}", week_key(at)),
        format!("month:{}", month_key(at)),
    ]
}

pub fn contest_period(contest_id: &str) -> String {
    format!("contest:{contest_id}")
}

fn week_monday(key: &str) -> Option<NaiveDate> {
    let (year, week) = key.split_once("-W")?;
    NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)
}

/// Consecutive weeks with a share, ending at the week of `latest` (`2026-W48` keys).
pub fn streak_weeks(week_keys: &[String], latest: &str) -> u32 {
    let mut mondays: Vec<NaiveDate> = week_keys
        .iter()
        .filter_map(|key| week_monday(key))
        .collect();
    mondays.sort_unstable();
    mondays.dedup();
    let Some(mut expected) = week_monday(latest) else {
        return 0;
    };
    let mut streak = 0;
    for monday in mondays.iter().rev() {
        if *monday > expected {
            continue;
        }
        if *monday != expected {
            break;
        }
        streak += 1;
        expected -= chrono::Duration::days(7);
    }
    streak
}

/// A badge earned by reaching a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub badge: &'static str,
    pub title: &'static str,
    pub action: &'static str,
    pub units: i64,
}

pub const THRESHOLDS: &[Threshold] = &[
    Threshold {
        badge: "first_share",
        title: "First share",
        action: "share",
        units: 1,
    },
    Threshold {
        badge: "ten_shares",
        title: "10 shares",
        action: "share",
        units: 10,
    },
    Threshold {
        badge: "hundred_clicks",
        title: "100 clicks by people",
        action: "click",
        units: 100,
    },
    Threshold {
        badge: "first_comment",
        title: "First comment received",
        action: "comment",
        units: 1,
    },
    Threshold {
        badge: "first_submission",
        title: "First approved submission",
        action: "submission_approved",
        units: 1,
    },
];

/// Weeks in a row with a share that earn the streak badge.
pub const STREAK_WEEKS: u32 = 4;
pub const STREAK_BADGE: &str = "streak_4_weeks";
pub const STREAK_TITLE: &str = "Shared 4 weeks in a row";

/// Thresholds of `action` reached with `units` in total.
pub fn thresholds_reached(
    action: &str,
    units: i64,
) -> impl Iterator<Item = &'static Threshold> + '_ {
    THRESHOLDS
        .iter()
        .filter(move |threshold| threshold.action == action && units >= threshold.units)
}

/// What one ledger entry adds to a contest's score.
pub fn contest_increment(metric: ContestMetric, action: &str, points: i64, units: i64) -> i64 {
    match metric {
        ContestMetric::Points => points,
        ContestMetric::Clicks if action == "click" => units,
        ContestMetric::Shares if action == "share" => units,
        ContestMetric::Clicks | ContestMetric::Shares => 0,
    }
}

/// What a contest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContestScope {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub metric: ContestMetric,
    pub topic: Option<String>,
    pub post_ids: Vec<String>,
}

impl ContestScope {
    /// Whether an entry on `post_id` (with the post's topics) at `at` counts.
    pub fn covers(&self, at: DateTime<Utc>, post_id: Option<&str>, topics: &[String]) -> bool {
        if at < self.starts_at || at >= self.ends_at {
            return false;
        }
        if let Some(topic) = &self.topic
            && !topics.contains(topic)
        {
            return false;
        }
        if !self.post_ids.is_empty() {
            return post_id.is_some_and(|post_id| self.post_ids.iter().any(|id| id == post_id));
        }
        true
    }

    fn scope_overlaps(&self, other: &ContestScope) -> bool {
        let topics_meet = match (&self.topic, &other.topic) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        };
        let posts_meet = self.post_ids.is_empty()
            || other.post_ids.is_empty()
            || self.post_ids.iter().any(|id| other.post_ids.contains(id));
        topics_meet && posts_meet
    }
}

/// Why a new contest makes no sense next to the existing ones, if it does not.
pub fn validate_contest(
    new: &ContestScope,
    existing: &[(String, ContestScope)],
) -> Result<(), ContestProblem> {
    if new.ends_at <= new.starts_at {
        return Err(ContestProblem::Invalid(
            "ends_at must be after starts_at".into(),
        ));
    }
    if new.ends_at - new.starts_at > chrono::Duration::days(366) {
        return Err(ContestProblem::Invalid(
            "a contest lasts at most a year".into(),
        ));
    }
    if new
        .topic
        .as_deref()
        .is_some_and(|topic| topic.trim().is_empty())
    {
        return Err(ContestProblem::Invalid("topic must not be empty".into()));
    }
    for (name, other) in existing {
        let times_overlap = new.starts_at < other.ends_at && other.starts_at < new.ends_at;
        if times_overlap && new.metric != other.metric && new.scope_overlaps(other) {
            return Err(ContestProblem::Conflict(format!(
                "contest {name} covers the same scope at the same time with another metric"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContestProblem {
    Invalid(String),
    Conflict(String),
}

/// Final order of a contest: highest score first, ties broken by name (user id or team),
/// so that the same scores always give the same winners.
pub fn rank_standings(mut scores: Vec<(String, i64)>) -> Vec<(u32, String, i64)> {
    scores.sort_by(|(name_a, score_a), (name_b, score_b)| {
        score_b.cmp(score_a).then(name_a.cmp(name_b))
    });
    scores
        .into_iter()
        .enumerate()
        .map(|(index, (name, score))| (index as u32 + 1, name, score))
        .collect()
}

/// The time an event happened when it carries none: the millisecond timestamp of a UUIDv7
/// event id (the outbox's ids), so that replays give the same time.
pub fn time_of_event_id(event_id: &str) -> Option<DateTime<Utc>> {
    let uuid = uuid::Uuid::parse_str(event_id).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = uuid.get_timestamp()?.to_unix();
    DateTime::<Utc>::from_timestamp(seconds as i64, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn config() -> chorus_kit::config::GamificationConfig {
        chorus_kit::Config::default().gamification
    }

    #[test]
    fn default_rules_weigh_engagement_above_volume() {
        let rules = default_rules(&config());
        assert_eq!(rules.share.points, 10);
        assert_eq!(rules.click.points, 20);
        assert_eq!(rules.reaction.points, 15);
        assert_eq!(rules.comment.points, 30);
        assert_eq!(rules.reshare.points, 25);
        assert_eq!(rules.submission_approved.points, 50);
        assert_eq!(rules.survey_answered.points, 5);
        assert_eq!(rules.onboarding_completed.points, 20);
        assert!(rules.comment.points > rules.share.points);
        validate_rules(&rules).unwrap();
    }

    #[test]
    fn caps_limit_spam_but_not_engagement() {
        let share = ActionRule {
            points: 10,
            daily_cap: Some(50),
            per_post_cap: Some(10),
        };
        // The first share of a post earns 10; a second share of the same post nothing.
        assert_eq!(capped_points(10, &share, 0, 0), 10);
        assert_eq!(capped_points(10, &share, 10, 10), 0);
        // The sixth share of the day earns nothing, the fifth earns 10.
        assert_eq!(capped_points(10, &share, 40, 0), 10);
        assert_eq!(capped_points(10, &share, 50, 0), 0);
        // Partial credit up to the cap.
        let reaction = ActionRule {
            points: 15,
            daily_cap: Some(100),
            per_post_cap: None,
        };
        assert_eq!(capped_points(45, &reaction, 90, 0), 10);
        // Corrections are not capped but never take a post below zero.
        assert_eq!(capped_points(-30, &reaction, 100, 45), -30);
        assert_eq!(capped_points(-30, &reaction, 100, 15), -15);
        let uncapped = ActionRule {
            points: 20,
            daily_cap: None,
            per_post_cap: None,
        };
        assert_eq!(
            capped_points(2_000_000, &uncapped, 1_000_000, 1_000_000),
            2_000_000
        );
    }

    #[test]
    fn nonsense_rules_are_rejected_with_the_reason() {
        let mut rules = default_rules(&config());
        rules.click.daily_cap = Some(-1);
        assert_eq!(
            validate_rules(&rules).unwrap_err(),
            "click.daily_cap must not be negative"
        );
        let mut rules = default_rules(&config());
        rules.comment.points = -5;
        assert_eq!(
            validate_rules(&rules).unwrap_err(),
            "comment.points must not be negative"
        );
    }

    #[test]
    fn a_version_applies_from_its_effective_time() {
        let defaults = default_rules(&config());
        let mut doubled = defaults.clone();
        doubled.comment.points = 60;
        let versions = vec![RulesVersion {
            version: 2,
            effective_from: at("2026-11-20T12:00:00Z"),
            rules: doubled,
        }];
        assert_eq!(
            rules_at(&versions, &defaults, at("2026-11-20T11:59:59Z")).version,
            1
        );
        let current = rules_at(&versions, &defaults, at("2026-11-20T12:00:00Z"));
        assert_eq!((current.version, current.rules.comment.points), (2, 60));
    }

    #[test]
    fn periods_are_utc_weeks_and_months() {
        let sunday_night = at("2026-11-29T23:30:00Z");
        assert_eq!(
            period_keys(sunday_night),
            [
                "all".to_string(),
                "week:2026-W48".into(),
                "month:2026-11".into()
            ]
        );
        assert_eq!(day_key(sunday_night), "2026-11-29");
        // 2027-01-01 is in ISO week 53 of 2026.
        assert_eq!(week_key(at("2027-01-01T10:00:00Z")), "2026-W53");
    }

    #[test]
    fn streaks_count_consecutive_weeks_up_to_the_latest() {
        let weeks: Vec<String> = ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(streak_weeks(&weeks, "2026-W48"), 4);
        assert_eq!(streak_weeks(&weeks, "2026-W47"), 3);
        let gap: Vec<String> = ["2026-W44", "2026-W46", "2026-W47"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(streak_weeks(&gap, "2026-W47"), 2);
        let new_year: Vec<String> = ["2026-W52", "2026-W53", "2027-W01"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(streak_weeks(&new_year, "2027-W01"), 3);
    }

    #[test]
    fn contests_cover_their_window_and_scope() {
        let scope = ContestScope {
            starts_at: at("2026-11-01T00:00:00Z"),
            ends_at: at("2026-12-01T00:00:00Z"),
            metric: ContestMetric::Clicks,
            topic: Some("jobs".into()),
            post_ids: vec![],
        };
        let jobs = vec!["jobs".to_string()];
        assert!(scope.covers(at("2026-11-01T00:00:00Z"), Some("p1"), &jobs));
        assert!(!scope.covers(at("2026-12-01T00:00:00Z"), Some("p1"), &jobs));
        assert!(!scope.covers(at("2026-11-05T00:00:00Z"), Some("p1"), &[]));
        assert_eq!(contest_increment(ContestMetric::Clicks, "click", 40, 2), 2);
        assert_eq!(
            contest_increment(ContestMetric::Clicks, "reaction", 15, 1),
            0
        );
        assert_eq!(
            contest_increment(ContestMetric::Points, "reaction", 15, 1),
            15
        );
    }

    #[test]
    fn overlapping_contests_with_other_metrics_conflict() {
        let clicks = ContestScope {
            starts_at: at("2026-11-01T00:00:00Z"),
            ends_at: at("2026-12-01T00:00:00Z"),
            metric: ContestMetric::Clicks,
            topic: Some("jobs".into()),
            post_ids: vec![],
        };
        let existing = vec![("November clicks".to_string(), clicks.clone())];
        let points_same_topic = ContestScope {
            metric: ContestMetric::Points,
            ..clicks.clone()
        };
        assert!(matches!(
            validate_contest(&points_same_topic, &existing),
            Err(ContestProblem::Conflict(_))
        ));
        let points_other_topic = ContestScope {
            topic: Some("csr".into()),
            ..points_same_topic.clone()
        };
        assert!(validate_contest(&points_other_topic, &existing).is_ok());
        let clicks_again = clicks.clone();
        assert!(validate_contest(&clicks_again, &existing).is_ok());
        let backwards = ContestScope {
            ends_at: clicks.starts_at,
            ..clicks
        };
        assert!(matches!(
            validate_contest(&backwards, &[]),
            Err(ContestProblem::Invalid(_))
        ));
    }

    #[test]
    fn ties_are_broken_by_name() {
        let ranked = rank_standings(vec![
            ("zoe".into(), 40),
            ("bob".into(), 40),
            ("amy".into(), 10),
        ]);
        assert_eq!(
            ranked,
            vec![
                (1, "bob".into(), 40),
                (2, "zoe".into(), 40),
                (3, "amy".into(), 10)
            ]
        );
    }

    #[test]
    fn uuid_v7_event_ids_carry_their_time() {
        let when = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let timestamp = uuid::Timestamp::from_unix(uuid::NoContext, when.timestamp() as u64, 0);
        let id = uuid::Uuid::new_v7(timestamp).to_string();
        assert_eq!(time_of_event_id(&id), Some(when));
        assert_eq!(time_of_event_id("share-published-s1"), None);
    }
}
