//! Content library, feed, compliance, submissions and surveys under `/v1`.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chorus_api::content::{
    AuditEntry, AuditQuery, AuditSettings, ComplianceRule, ComplianceRuleInput, ContentPreferences,
    Decision, FeedItem, FeedQuery, ListQuery, Post, PostInput, PostRef, RuleRef, Submission,
    SubmissionInput, TopicRef, Topics, Transition, UpdatePost,
};
use chorus_api::surveys::{ResultsQuery, SubmitAnswers, Survey, SurveyInput, SurveyResults};
use chorus_api::{Empty, Page};
use chorus_kit::{ServiceError, ServiceResult};

type Problem = chorus_kit::error::Problem;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/posts", post(create_post).get(list_posts))
        .route("/v1/posts/{post_id}", get(get_post).put(update_post))
        .route("/v1/posts/{post_id}/submit", post(submit_post))
        .route("/v1/posts/{post_id}/approve", post(approve_post))
        .route("/v1/posts/{post_id}/request-changes", post(request_changes))
        .route("/v1/posts/{post_id}/publish", post(publish_post))
        .route("/v1/posts/{post_id}/archive", post(archive_post))
        .route("/v1/feed", get(feed))
        .route("/v1/me/topics", get(my_topics))
        .route(
            "/v1/me/topics/{topic}",
            put(follow_topic).delete(unfollow_topic),
        )
        .route("/v1/me/preferences/content", put(set_preferences))
        .route("/v1/compliance/rules", post(create_rule).get(list_rules))
        .route(
            "/v1/compliance/rules/{rule_id}",
            axum::routing::delete(delete_rule),
        )
        .route("/v1/audit", get(audit_log))
        .route("/v1/audit/export", get(audit_export))
        .route(
            "/v1/audit/settings",
            get(get_audit_settings).put(set_audit_settings),
        )
        .route(
            "/v1/submissions",
            post(create_submission).get(list_submissions),
        )
        .route(
            "/v1/submissions/{submission_id}/approve",
            post(approve_submission),
        )
        .route(
            "/v1/submissions/{submission_id}/reject",
            post(reject_submission),
        )
        .route("/v1/surveys", post(create_survey).get(list_surveys))
        .route("/v1/surveys/{survey_id}/answers", post(answer_survey))
        .route("/v1/surveys/{survey_id}/results", get(survey_results))
}

/// A post with its version as the ETag.
fn with_etag(post: Post) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", post.version))
        .expect("a number is a valid header");
    let mut response = Json(post).into_response();
    response.headers_mut().insert(header::ETAG, etag);
    response
}

/// An optional JSON body (lifecycle moves may carry a reason or nothing).
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> ServiceResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ServiceError::invalid(format!("request body is not valid: {error}")))
}

#[derive(Default, serde::Deserialize, utoipa::ToSchema)]
pub struct TransitionBody {
    /// Why (required to request changes).
    reason: Option<String>,
}

/// Create a draft post in the content library (curators).
#[utoipa::path(post, path = "/v1/posts", tag = "content", request_body = PostInput,
    responses((status = 201, body = Post), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<PostInput>,
) -> ServiceResult<(StatusCode, Response)> {
    let post: Post = call(&state, "content", "post_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, with_etag(post)))
}

/// Every post of the tenant, newest first (curators and approvers); filter by `status`.
#[utoipa::path(get, path = "/v1/posts", tag = "content", params(ListQuery), responses((status = 200, body = Page<Post>)))]
pub async fn list_posts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<ListQuery>,
) -> ServiceResult<Json<Page<Post>>> {
    Ok(Json(
        call(&state, "content", "post_list", &caller, &query).await?,
    ))
}

/// A post, with its version in the `ETag` header. Advocates see published posts only.
#[utoipa::path(get, path = "/v1/posts/{post_id}", tag = "content", params(("post_id" = String, Path)),
    responses((status = 200, body = Post), (status = 404, body = Problem)))]
pub async fn get_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
) -> ServiceResult<Response> {
    let post: Post = call(&state, "content", "post_get", &caller, &PostRef { post_id }).await?;
    Ok(with_etag(post))
}

/// Replace a post's content. Send the `ETag` you read as `If-Match`: a post changed since
/// answers 412.
#[utoipa::path(put, path = "/v1/posts/{post_id}", tag = "content", request_body = PostInput,
    params(("post_id" = String, Path), ("If-Match" = Option<String>, Header, description = "the ETag read")),
    responses((status = 200, body = Post), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn update_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PostInput>,
) -> Result<Response, Response> {
    let expected_version = match headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
    {
        None => None,
        Some(value) => match value
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<i64>()
        {
            Ok(version) => Some(version),
            Err(_) => {
                return Err(
                    ServiceError::invalid("If-Match must be an ETag this API returned")
                        .into_response(),
                );
            }
        },
    };
    let request = UpdatePost {
        post_id,
        expected_version,
        post: input,
    };
    match call::<_, Post>(&state, "content", "post_update", &caller, &request).await {
        Ok(post) => Ok(with_etag(post)),
        Err(error)
            if expected_version.is_some() && error.code == chorus_kit::ErrorCode::Conflict =>
        {
            let mut response = error.into_response();
            *response.status_mut() = StatusCode::PRECONDITION_FAILED;
            Err(response)
        }
        Err(error) => Err(error.into_response()),
    }
}

async fn transition(
    state: &AppState,
    caller: &chorus_kit::Caller,
    endpoint: &str,
    post_id: String,
    body: &Bytes,
) -> ServiceResult<Response> {
    let body: TransitionBody = optional_body(body)?;
    let post: Post = call(
        state,
        "content",
        endpoint,
        caller,
        &Transition {
            post_id,
            reason: body.reason,
        },
    )
    .await?;
    Ok(with_etag(post))
}

/// Send a draft for review (curators).
#[utoipa::path(post, path = "/v1/posts/{post_id}/submit", tag = "content", params(("post_id" = String, Path)), request_body(content = TransitionBody, description = "optional"),
    responses((status = 200, body = Post), (status = 409, body = Problem)))]
pub async fn submit_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Response> {
    transition(&state, &caller, "post_submit_review", post_id, &body).await
}

/// Approve a post in review (approvers and admins; never the post's author).
#[utoipa::path(post, path = "/v1/posts/{post_id}/approve", tag = "content", params(("post_id" = String, Path)), request_body(content = TransitionBody, description = "optional"),
    responses((status = 200, body = Post), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Response> {
    transition(&state, &caller, "post_approve", post_id, &body).await
}

/// Send a post back to draft with a reason (approvers and admins).
#[utoipa::path(post, path = "/v1/posts/{post_id}/request-changes", tag = "content", params(("post_id" = String, Path)), request_body = TransitionBody,
    responses((status = 200, body = Post), (status = 422, body = Problem)))]
pub async fn request_changes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Response> {
    transition(&state, &caller, "post_request_changes", post_id, &body).await
}

/// Publish: visible to advocates from `available_from` (curators). Posts with topics that
/// need approval must be approved first.
#[utoipa::path(post, path = "/v1/posts/{post_id}/publish", tag = "content", params(("post_id" = String, Path)), request_body(content = TransitionBody, description = "optional"),
    responses((status = 200, body = Post), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn publish_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Response> {
    transition(&state, &caller, "post_publish", post_id, &body).await
}

/// Withdraw a post from the library (curators).
#[utoipa::path(post, path = "/v1/posts/{post_id}/archive", tag = "content", params(("post_id" = String, Path)), request_body(content = TransitionBody, description = "optional"),
    responses((status = 200, body = Post), (status = 409, body = Problem)))]
pub async fn archive_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(post_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Response> {
    transition(&state, &caller, "post_archive", post_id, &body).await
}

/// The advocate's feed: posts for them, in their language; followed topics first, then
/// posts they have not shared, then the freshest. `q` searches titles and commentary.
#[utoipa::path(get, path = "/v1/feed", tag = "content", params(FeedQuery), responses((status = 200, body = Page<FeedItem>)))]
pub async fn feed(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<FeedQuery>,
) -> ServiceResult<Json<Page<FeedItem>>> {
    Ok(Json(
        call(&state, "content", "feed", &caller, &query).await?,
    ))
}

/// Topics the caller follows.
#[utoipa::path(get, path = "/v1/me/topics", tag = "content", responses((status = 200, body = Topics)))]
pub async fn my_topics(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Topics>> {
    Ok(Json(
        call(&state, "content", "topic_list", &caller, &Empty {}).await?,
    ))
}

/// Follow a topic: its posts come first in the feed.
#[utoipa::path(put, path = "/v1/me/topics/{topic}", tag = "content", params(("topic" = String, Path)), responses((status = 200, body = Topics)))]
pub async fn follow_topic(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(topic): Path<String>,
) -> ServiceResult<Json<Topics>> {
    Ok(Json(
        call(
            &state,
            "content",
            "topic_follow",
            &caller,
            &TopicRef { topic },
        )
        .await?,
    ))
}

/// Stop following a topic.
#[utoipa::path(delete, path = "/v1/me/topics/{topic}", tag = "content", params(("topic" = String, Path)), responses((status = 200, body = Topics)))]
pub async fn unfollow_topic(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(topic): Path<String>,
) -> ServiceResult<Json<Topics>> {
    Ok(Json(
        call(
            &state,
            "content",
            "topic_unfollow",
            &caller,
            &TopicRef { topic },
        )
        .await?,
    ))
}

/// Whether colleagues may see the caller's name among a post's sharers (off by default).
#[utoipa::path(put, path = "/v1/me/preferences/content", tag = "content", request_body = ContentPreferences, responses((status = 200, body = ContentPreferences)))]
pub async fn set_preferences(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<ContentPreferences>,
) -> ServiceResult<Json<ContentPreferences>> {
    Ok(Json(
        call(&state, "content", "preferences_set", &caller, &request).await?,
    ))
}

/// Add a compliance rule (admins): a banned term, a mandatory disclosure, or a topic that
/// needs approval.
#[utoipa::path(post, path = "/v1/compliance/rules", tag = "compliance", request_body = ComplianceRuleInput,
    responses((status = 201, body = ComplianceRule), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_rule(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<ComplianceRuleInput>,
) -> ServiceResult<(StatusCode, Json<ComplianceRule>)> {
    Ok((
        StatusCode::CREATED,
        Json(call(&state, "content", "rule_create", &caller, &input).await?),
    ))
}

/// The tenant's compliance rules.
#[utoipa::path(get, path = "/v1/compliance/rules", tag = "compliance", responses((status = 200, body = Vec<ComplianceRule>)))]
pub async fn list_rules(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Vec<ComplianceRule>>> {
    Ok(Json(
        call(&state, "content", "rule_list", &caller, &Empty {}).await?,
    ))
}

/// Remove a compliance rule (admins).
#[utoipa::path(delete, path = "/v1/compliance/rules/{rule_id}", tag = "compliance", params(("rule_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(rule_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        "content",
        "rule_delete",
        &caller,
        &RuleRef { rule_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's audit log, newest first (admins): curation and compliance actions with their
/// detail, and every change made through the API by an administrator, curator, approver,
/// integrator or operator (`METHOD /route`, the path, status, how they authenticated and the
/// trace id). Filter by `actor`, `action` prefix and period.
#[utoipa::path(get, path = "/v1/audit", tag = "compliance", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn audit_log(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<AuditQuery>,
) -> ServiceResult<Json<Page<AuditEntry>>> {
    Ok(Json(
        call(&state, "content", "audit_list", &caller, &query).await?,
    ))
}

/// Query of an audit export: the period and filters of `GET /v1/audit`, and the format.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditExportQuery {
    /// Only this person's actions.
    pub actor: Option<String>,
    /// Only actions starting with this.
    pub action: Option<String>,
    /// From this time on (RFC 3339).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time (RFC 3339).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// `ndjson` (one JSON entry per line, the default) or `csv`.
    pub format: Option<String>,
}

/// Export the audit log of a period, oldest first (admins): NDJSON or CSV, at most 100,000
/// entries per export (ask for shorter periods beyond).
#[utoipa::path(get, path = "/v1/audit/export", tag = "compliance", params(AuditExportQuery),
    responses((status = 200, description = "The entries", content_type = "application/x-ndjson", body = String),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn audit_export(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<AuditExportQuery>,
) -> ServiceResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let csv = match query.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ServiceError::invalid(format!(
                "format {other} is not ndjson or csv"
            )));
        }
    };
    let filter = AuditQuery {
        actor: query.actor,
        action: query.action,
        from: query.from,
        to: query.to,
        ..AuditQuery::default()
    };
    let entries: Vec<AuditEntry> =
        call(&state, "content", "audit_export", &caller, &filter).await?;
    let mut body = String::new();
    if csv {
        body.push_str("id,at,actor,action,target,detail\n");
        for entry in &entries {
            let fields = [
                entry.id.clone(),
                entry.at.to_rfc3339(),
                entry.actor.clone(),
                entry.action.clone(),
                entry.target.clone(),
                entry.detail.clone(),
            ];
            let line: Vec<String> = fields
                .iter()
                .map(|field| crate::analytics_routes::csv_field(field))
                .collect();
            body.push_str(&line.join(","));
            body.push('\n');
        }
    } else {
        for entry in &entries {
            body.push_str(&serde_json::to_string(entry).unwrap_or_default());
            body.push('\n');
        }
    }
    let (content_type, extension) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "ndjson")
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"chorus-audit-{}-{}.{extension}\"",
                    caller.tenant_id,
                    chrono::Utc::now().format("%Y%m%d")
                ),
            ),
        ],
        body,
    )
        .into_response())
}

/// How long the audit log keeps entries (admins).
#[utoipa::path(get, path = "/v1/audit/settings", tag = "compliance", operation_id = "get_audit_settings",
    responses((status = 200, body = AuditSettings), (status = 403, body = Problem)))]
pub async fn get_audit_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<AuditSettings>> {
    Ok(Json(
        call(
            &state,
            "content",
            "audit_settings_get",
            &caller,
            &chorus_api::Empty {},
        )
        .await?,
    ))
}

/// Set how long the audit log keeps entries (admins; 30 to 3650 days). Older entries are
/// deleted at once, then hourly.
#[utoipa::path(put, path = "/v1/audit/settings", tag = "compliance", operation_id = "set_audit_settings", request_body = AuditSettings,
    responses((status = 200, body = AuditSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_audit_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(settings): ApiJson<AuditSettings>,
) -> ServiceResult<Json<AuditSettings>> {
    Ok(Json(
        call(&state, "content", "audit_settings_set", &caller, &settings).await?,
    ))
}

/// Propose content (advocates): curators approve it into a post crediting you, or reject it.
#[utoipa::path(post, path = "/v1/submissions", tag = "submissions", request_body = SubmissionInput,
    responses((status = 201, body = Submission), (status = 422, body = Problem)))]
pub async fn create_submission(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<SubmissionInput>,
) -> ServiceResult<(StatusCode, Json<Submission>)> {
    Ok((
        StatusCode::CREATED,
        Json(call(&state, "content", "submission_create", &caller, &input).await?),
    ))
}

/// Submissions: every one for curators, your own otherwise.
#[utoipa::path(get, path = "/v1/submissions", tag = "submissions", params(ListQuery), responses((status = 200, body = Page<Submission>)))]
pub async fn list_submissions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<ListQuery>,
) -> ServiceResult<Json<Page<Submission>>> {
    Ok(Json(
        call(&state, "content", "submission_list", &caller, &query).await?,
    ))
}

/// Approve a submission: it becomes an approved post crediting its author (curators).
#[utoipa::path(post, path = "/v1/submissions/{submission_id}/approve", tag = "submissions", params(("submission_id" = String, Path)),
    responses((status = 200, body = Submission), (status = 409, body = Problem)))]
pub async fn approve_submission(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(submission_id): Path<String>,
) -> ServiceResult<Json<Submission>> {
    Ok(Json(
        call(
            &state,
            "content",
            "submission_approve",
            &caller,
            &Decision {
                submission_id,
                reason: None,
            },
        )
        .await?,
    ))
}

/// Reject a submission with a reason shown to its author (curators).
#[utoipa::path(post, path = "/v1/submissions/{submission_id}/reject", tag = "submissions", params(("submission_id" = String, Path)), request_body = TransitionBody,
    responses((status = 200, body = Submission), (status = 422, body = Problem)))]
pub async fn reject_submission(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(submission_id): Path<String>,
    body: Bytes,
) -> ServiceResult<Json<Submission>> {
    let body: TransitionBody = optional_body(&body)?;
    Ok(Json(
        call(
            &state,
            "content",
            "submission_reject",
            &caller,
            &Decision {
                submission_id,
                reason: body.reason,
            },
        )
        .await?,
    ))
}

/// Create a pulse survey (curators): up to 10 questions, optionally the eNPS question.
#[utoipa::path(post, path = "/v1/surveys", tag = "surveys", request_body = SurveyInput,
    responses((status = 201, body = Survey), (status = 422, body = Problem)))]
pub async fn create_survey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<SurveyInput>,
) -> ServiceResult<(StatusCode, Json<Survey>)> {
    Ok((
        StatusCode::CREATED,
        Json(call(&state, "content", "survey_create", &caller, &input).await?),
    ))
}

/// Surveys for the caller, with whether they answered this period (curators see all).
#[utoipa::path(get, path = "/v1/surveys", tag = "surveys", responses((status = 200, body = Vec<Survey>)))]
pub async fn list_surveys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Vec<Survey>>> {
    Ok(Json(
        call(&state, "content", "survey_list", &caller, &Empty {}).await?,
    ))
}

/// Answer a survey, once per period. Answers are anonymous.
#[utoipa::path(post, path = "/v1/surveys/{survey_id}/answers", tag = "surveys", params(("survey_id" = String, Path)), request_body = SubmitAnswers,
    responses((status = 201, body = Survey), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn answer_survey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(survey_id): Path<String>,
    ApiJson(mut request): ApiJson<SubmitAnswers>,
) -> ServiceResult<(StatusCode, Json<Survey>)> {
    request.survey_id = survey_id;
    Ok((
        StatusCode::CREATED,
        Json(call(&state, "content", "survey_answer", &caller, &request).await?),
    ))
}

/// Results of a period: eNPS, per-question figures, departments with at least five answers,
/// and the trend (curators, approvers, admins).
#[utoipa::path(get, path = "/v1/surveys/{survey_id}/results", tag = "surveys", params(("survey_id" = String, Path), ("period" = Option<String>, Query)),
    responses((status = 200, body = SurveyResults), (status = 404, body = Problem)))]
pub async fn survey_results(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(survey_id): Path<String>,
    crate::error::ApiQuery(mut query): crate::error::ApiQuery<ResultsQuery>,
) -> ServiceResult<Json<SurveyResults>> {
    query.survey_id = survey_id;
    Ok(Json(
        call(&state, "content", "survey_results", &caller, &query).await?,
    ))
}
