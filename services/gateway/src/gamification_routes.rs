//! Points, rules, leaderboards, badges and contests under `/v1`.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chorus_api::gamification::{
    ActionRule, Badge, Badges, Board, Contest, ContestInput, ContestMetric, ContestRef,
    ContestStanding, ContestStatus, GamificationPreferences, GrantBadge, Leaderboard,
    LeaderboardQuery, LedgerEntry, Period, PointRules, PointsSummary, Redemption, RedemptionRef,
    RedemptionStatus, Reward, RewardInput, RewardRef, RulesHistory, RulesInput, RulesVersion,
    Standing,
};
use chorus_api::{Empty, Page};
use chorus_kit::ServiceResult;
use utoipa::OpenApi;

type Problem = chorus_kit::error::Problem;

#[derive(OpenApi)]
#[openapi(
    paths(
        my_points,
        get_rules,
        set_rules,
        leaderboard,
        my_rank,
        set_preferences,
        my_badges,
        grant_badge,
        create_contest,
        list_contests,
        get_contest,
        create_reward,
        list_rewards,
        redeem,
        list_redemptions,
        approve_redemption,
        reject_redemption
    ),
    components(schemas(
        LedgerEntry,
        PointsSummary,
        ActionRule,
        PointRules,
        RulesInput,
        RulesVersion,
        RulesHistory,
        Board,
        Period,
        Standing,
        Leaderboard,
        GamificationPreferences,
        Badge,
        Badges,
        GrantBadge,
        ContestMetric,
        ContestInput,
        ContestStatus,
        ContestStanding,
        Contest,
        RewardInput,
        Reward,
        RedemptionStatus,
        Redemption
    ))
)]
pub struct GamificationApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me/points", get(my_points))
        .route("/v1/me/rank", get(my_rank))
        .route("/v1/me/badges", get(my_badges))
        .route("/v1/me/preferences/gamification", put(set_preferences))
        .route("/v1/gamification/rules", get(get_rules).put(set_rules))
        .route("/v1/leaderboard", get(leaderboard))
        .route("/v1/badges", post(grant_badge))
        .route("/v1/contests", post(create_contest).get(list_contests))
        .route("/v1/contests/{contest_id}", get(get_contest))
        .route("/v1/rewards", post(create_reward).get(list_rewards))
        .route("/v1/rewards/{reward_id}/redeem", post(redeem))
        .route("/v1/redemptions", get(list_redemptions))
        .route(
            "/v1/redemptions/{redemption_id}/approve",
            post(approve_redemption),
        )
        .route(
            "/v1/redemptions/{redemption_id}/reject",
            post(reject_redemption),
        )
}

/// The caller's points balance and latest ledger entries (each names its source event,
/// the rules version that priced it and the points asked before caps).
#[utoipa::path(get, path = "/v1/me/points", tag = "gamification", responses((status = 200, body = PointsSummary)))]
pub async fn my_points(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<PointsSummary>> {
    Ok(Json(
        call(&state, "gamification", "points_me", &caller, &Empty {}).await?,
    ))
}

/// The tenant's points rules: every version and the one in force.
#[utoipa::path(get, path = "/v1/gamification/rules", tag = "gamification", responses((status = 200, body = RulesHistory)))]
pub async fn get_rules(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<RulesHistory>> {
    Ok(Json(
        call(&state, "gamification", "rules_get", &caller, &Empty {}).await?,
    ))
}

/// Add a version of the points rules (admins). It applies from `effective_from` (now or
/// later, never in the past); entries already credited keep the version that priced them.
/// Negative points or caps are refused with the field named.
#[utoipa::path(put, path = "/v1/gamification/rules", tag = "gamification", request_body = RulesInput,
    responses((status = 200, body = RulesHistory), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_rules(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<RulesInput>,
) -> ServiceResult<Json<RulesHistory>> {
    Ok(Json(
        call(&state, "gamification", "rules_set", &caller, &input).await?,
    ))
}

/// A leaderboard (company or the caller's department; this week, this month, all time or
/// a contest): the top, the caller's rank and their neighbours. Executives appear like
/// anyone else; people who hide their name appear as "an advocate"; deactivated people
/// do not appear.
#[utoipa::path(get, path = "/v1/leaderboard", tag = "gamification", params(LeaderboardQuery),
    responses((status = 200, body = Leaderboard), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn leaderboard(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<LeaderboardQuery>,
) -> ServiceResult<Json<Leaderboard>> {
    Ok(Json(
        call(&state, "gamification", "leaderboard", &caller, &query).await?,
    ))
}

/// The caller's rank on a board and the people around them (no top).
#[utoipa::path(get, path = "/v1/me/rank", tag = "gamification", params(LeaderboardQuery),
    responses((status = 200, body = Leaderboard), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn my_rank(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<LeaderboardQuery>,
) -> ServiceResult<Json<Leaderboard>> {
    Ok(Json(
        call(&state, "gamification", "rank_me", &caller, &query).await?,
    ))
}

/// Hide or show the caller's name on boards (points are kept either way).
#[utoipa::path(put, path = "/v1/me/preferences/gamification", operation_id = "set_gamification_preferences", tag = "gamification", request_body = GamificationPreferences,
    responses((status = 200, body = GamificationPreferences)))]
pub async fn set_preferences(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(preferences): ApiJson<GamificationPreferences>,
) -> ServiceResult<Json<GamificationPreferences>> {
    Ok(Json(
        call(
            &state,
            "gamification",
            "preferences_set",
            &caller,
            &preferences,
        )
        .await?,
    ))
}

/// The caller's badges, oldest first.
#[utoipa::path(get, path = "/v1/me/badges", tag = "gamification", responses((status = 200, body = Badges)))]
pub async fn my_badges(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Badges>> {
    Ok(Json(
        call(&state, "gamification", "badges_me", &caller, &Empty {}).await?,
    ))
}

/// Grant a special badge to someone (admins); announced as `gamification.badge_earned.v1`.
#[utoipa::path(post, path = "/v1/badges", tag = "gamification", request_body = GrantBadge,
    responses((status = 201, body = Badge), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn grant_badge(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<GrantBadge>,
) -> ServiceResult<(StatusCode, Json<Badge>)> {
    let badge: Badge = call(&state, "gamification", "badge_grant", &caller, &request).await?;
    Ok((StatusCode::CREATED, Json(badge)))
}

/// Create a contest (admins and curators): a time window, an optional topic or list of
/// posts, a metric (points, clicks or shares), people or departments. A contest that
/// overlaps another on the same scope with another metric is refused (409).
#[utoipa::path(post, path = "/v1/contests", tag = "gamification", request_body = ContestInput,
    responses((status = 201, body = Contest), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_contest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<ContestInput>,
) -> ServiceResult<(StatusCode, Json<Contest>)> {
    let contest: Contest = call(&state, "gamification", "contest_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(contest)))
}

/// The tenant's contests, latest first, with their standings.
#[utoipa::path(get, path = "/v1/contests", tag = "gamification", responses((status = 200, body = Page<Contest>)))]
pub async fn list_contests(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Page<Contest>>> {
    Ok(Json(
        call(&state, "gamification", "contest_list", &caller, &Empty {}).await?,
    ))
}

/// A contest: live standings while it runs, frozen results once finished (ties broken by
/// user id or department name).
#[utoipa::path(get, path = "/v1/contests/{contest_id}", tag = "gamification", params(("contest_id" = String, Path)),
    responses((status = 200, body = Contest), (status = 404, body = Problem)))]
pub async fn get_contest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(contest_id): Path<String>,
) -> ServiceResult<Json<Contest>> {
    Ok(Json(
        call(
            &state,
            "gamification",
            "contest_get",
            &caller,
            &ContestRef { contest_id },
        )
        .await?,
    ))
}

/// Add a reward to the catalogue (admins); its cost is in points.
#[utoipa::path(post, path = "/v1/rewards", tag = "gamification", request_body = RewardInput,
    responses((status = 201, body = Reward), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_reward(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<RewardInput>,
) -> ServiceResult<(StatusCode, Json<Reward>)> {
    let reward: Reward = call(&state, "gamification", "reward_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(reward)))
}

/// The rewards catalogue, cheapest first.
#[utoipa::path(get, path = "/v1/rewards", tag = "gamification", responses((status = 200, body = Page<Reward>)))]
pub async fn list_rewards(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Page<Reward>>> {
    Ok(Json(
        call(&state, "gamification", "reward_list", &caller, &Empty {}).await?,
    ))
}

/// Redeem points for a reward: the cost is held from the balance until an admin approves
/// or rejects. Refused (409) when the balance is short; two concurrent requests never
/// spend the same points.
#[utoipa::path(post, path = "/v1/rewards/{reward_id}/redeem", tag = "gamification", params(("reward_id" = String, Path)),
    responses((status = 201, body = Redemption), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn redeem(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(reward_id): Path<String>,
) -> ServiceResult<(StatusCode, Json<Redemption>)> {
    let redemption: Redemption = call(
        &state,
        "gamification",
        "reward_redeem",
        &caller,
        &RewardRef { reward_id },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(redemption)))
}

/// Redemptions, newest first: every one of the tenant for admins, one's own otherwise.
#[utoipa::path(get, path = "/v1/redemptions", tag = "gamification", responses((status = 200, body = Page<Redemption>)))]
pub async fn list_redemptions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Page<Redemption>>> {
    Ok(Json(
        call(
            &state,
            "gamification",
            "redemption_list",
            &caller,
            &Empty {},
        )
        .await?,
    ))
}

/// Approve a pending redemption (admins): the held points stay spent.
#[utoipa::path(post, path = "/v1/redemptions/{redemption_id}/approve", tag = "gamification", params(("redemption_id" = String, Path)),
    responses((status = 200, body = Redemption), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_redemption(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(redemption_id): Path<String>,
) -> ServiceResult<Json<Redemption>> {
    Ok(Json(
        call(
            &state,
            "gamification",
            "redemption_approve",
            &caller,
            &RedemptionRef { redemption_id },
        )
        .await?,
    ))
}

/// Reject a pending redemption (admins): the held points come back.
#[utoipa::path(post, path = "/v1/redemptions/{redemption_id}/reject", tag = "gamification", params(("redemption_id" = String, Path)),
    responses((status = 200, body = Redemption), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reject_redemption(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(redemption_id): Path<String>,
) -> ServiceResult<Json<Redemption>> {
    Ok(Json(
        call(
            &state,
            "gamification",
            "redemption_reject",
            &caller,
            &RedemptionRef { redemption_id },
        )
        .await?,
    ))
}
