//! Analytics under `/v1/analytics` (program) and `/v1/me/analytics` (the advocate's own),
//! as JSON or, with `format=csv`, as a CSV file.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chorus_api::Empty;
use chorus_api::engagement::{
    AnalyticsSettings, BreakdownQuery, BreakdownRow, Dimension, EmvExplained, Figures,
    NetworkRates, PeriodQuery, PersonalDashboard, ProgramSummary,
};
use chorus_kit::{ServiceError, ServiceResult};
use utoipa::OpenApi;

type Problem = chorus_kit::error::Problem;

#[derive(OpenApi)]
#[openapi(
    paths(summary, breakdown, personal, get_settings, put_settings),
    components(schemas(Figures, BreakdownRow, EmvExplained, NetworkRates, Dimension))
)]
pub struct AnalyticsApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/summary", get(summary))
        .route("/v1/analytics/breakdown", get(breakdown))
        .route(
            "/v1/analytics/settings",
            get(get_settings).put(put_settings),
        )
        .route("/v1/me/analytics", get(personal))
}

fn wants_csv(format: &Option<String>) -> ServiceResult<bool> {
    match format.as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ServiceError::invalid(format!(
            "format {other} is not json or csv"
        ))),
    }
}

pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Rows as CSV, one line per group, with a header.
pub fn csv(first_column: &str, rows: &[BreakdownRow]) -> String {
    let mut text = format!(
        "{first_column},label,shares,clicks,bot_clicks,unique_visitors,reactions,comments,reshares,impressions,engagement_rate_percent,emv\n"
    );
    for row in rows {
        let figures = &row.figures;
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.2}\n",
            csv_field(&row.key),
            csv_field(&row.label),
            figures.shares,
            figures.clicks,
            figures.bot_clicks,
            figures.unique_visitors,
            figures.reactions,
            figures.comments,
            figures.reshares,
            figures.impressions,
            figures
                .engagement_rate
                .map(|rate| format!("{rate:.2}"))
                .unwrap_or_default(),
            figures.emv
        ));
    }
    text
}

fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The program over a period: potential reach, shares, clicks by people, unique visitors,
/// reactions, comments, reshares, engagement rate, active advocates and segments, earned media
/// value with its formula and rates, top posts and advocates (admins and curators).
#[utoipa::path(get, path = "/v1/analytics/summary", tag = "analytics", params(PeriodQuery),
    responses((status = 200, body = ProgramSummary), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn summary(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<PeriodQuery>,
) -> ServiceResult<Response> {
    let csv_wanted = wants_csv(&query.format)?;
    let summary: ProgramSummary =
        call(&state, "engagement", "analytics_summary", &caller, &query).await?;
    if csv_wanted {
        let row = BreakdownRow {
            key: format!("{}..{}", summary.from, summary.to),
            label: "program".into(),
            figures: summary.figures.clone(),
        };
        return Ok(csv_response("summary", csv("period", &[row])));
    }
    Ok(Json(summary).into_response())
}

/// Figures grouped by share, post, advocate, department, network, topic or day (admins and
/// curators). `format=csv` downloads the same rows.
#[utoipa::path(get, path = "/v1/analytics/breakdown", tag = "analytics", params(BreakdownQuery),
    responses((status = 200, body = Vec<BreakdownRow>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn breakdown(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<BreakdownQuery>,
) -> ServiceResult<Response> {
    let csv_wanted = wants_csv(&query.format)?;
    let rows: Vec<BreakdownRow> =
        call(&state, "engagement", "analytics_breakdown", &caller, &query).await?;
    if csv_wanted {
        let name = serde_json::to_value(query.by)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        return Ok(csv_response(
            &format!("breakdown-{name}"),
            csv(&name, &rows),
        ));
    }
    Ok(Json(rows).into_response())
}

/// The caller's own results: reach, clicks, engagement and earned media value, day by day.
#[utoipa::path(get, path = "/v1/me/analytics", tag = "analytics", params(PeriodQuery), responses((status = 200, body = PersonalDashboard)))]
pub async fn personal(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    crate::error::ApiQuery(query): crate::error::ApiQuery<PeriodQuery>,
) -> ServiceResult<Response> {
    let csv_wanted = wants_csv(&query.format)?;
    let dashboard: PersonalDashboard =
        call(&state, "engagement", "analytics_me", &caller, &query).await?;
    if csv_wanted {
        return Ok(csv_response("my-analytics", csv("day", &dashboard.trend)));
    }
    Ok(Json(dashboard).into_response())
}

/// The tenant's analytics settings: time zone of day boundaries, currency, EMV rates.
#[utoipa::path(get, path = "/v1/analytics/settings", operation_id = "get_analytics_settings", tag = "analytics", responses((status = 200, body = AnalyticsSettings)))]
pub async fn get_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<AnalyticsSettings>> {
    Ok(Json(
        call(
            &state,
            "engagement",
            "analytics_settings_get",
            &caller,
            &Empty {},
        )
        .await?,
    ))
}

/// Change the analytics settings (admins).
#[utoipa::path(put, path = "/v1/analytics/settings", tag = "analytics", request_body = AnalyticsSettings,
    responses((status = 200, body = AnalyticsSettings), (status = 422, body = Problem)))]
pub async fn put_settings(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(request): ApiJson<AnalyticsSettings>,
) -> ServiceResult<Json<AnalyticsSettings>> {
    Ok(Json(
        call(
            &state,
            "engagement",
            "analytics_settings_put",
            &caller,
            &request,
        )
        .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let row = BreakdownRow {
            key: "p1".into(),
            label: "Hiring, \"now\"".into(),
            figures: Figures {
                shares: 2,
                emv: 1.5,
                ..Default::default()
            },
        };
        let text = csv("post", &[row]);
        assert!(text.starts_with("post,label,shares,"));
        assert!(text.contains("p1,\"Hiring, \"\"now\"\"\",2,"));
        assert!(text.trim_end().ends_with(",1.50"));
    }
}
