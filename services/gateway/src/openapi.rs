//! The OpenAPI document, generated from the handlers and committed as `openapi.json`.

use crate::{content_routes, routes};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Chorus API", description = "Employee advocacy: content, shares, accounts, engagement, points and notifications."),
    paths(
        routes::create_tenant, routes::create_user, routes::update_user, routes::erase_user, routes::accept_guidelines, routes::my_onboarding, routes::me,
        content_routes::create_post, content_routes::list_posts, content_routes::get_post, content_routes::update_post,
        content_routes::submit_post, content_routes::approve_post, content_routes::request_changes,
        content_routes::publish_post, content_routes::archive_post, content_routes::feed,
        content_routes::my_topics, content_routes::follow_topic, content_routes::unfollow_topic, content_routes::set_preferences,
        content_routes::create_rule, content_routes::list_rules, content_routes::delete_rule, content_routes::audit_log, content_routes::audit_export, content_routes::get_audit_settings, content_routes::set_audit_settings,
        content_routes::create_submission, content_routes::list_submissions, content_routes::approve_submission,
        content_routes::reject_submission, content_routes::create_survey, content_routes::list_surveys,
        content_routes::answer_survey, content_routes::survey_results,
        routes::list_accounts, routes::start_connect, routes::complete_connect, routes::disconnect_account, routes::connect_with_app_password,
        routes::create_share, routes::my_slots, routes::set_my_slots, routes::list_shares, routes::get_share, routes::edit_share, routes::cancel_share, routes::resolve_share, routes::share_stats,
        routes::my_notifications, crate::live::stream, routes::mark_read,
    ),
    components(schemas(chorus_kit::error::Problem, chorus_kit::ErrorCode, chorus_kit::Role)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole document: the core paths above, merged with the pieces that resource modules
/// own (each module keeps its routes and its `#[derive(OpenApi)]` together).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    for piece in pieces() {
        document.merge(piece);
    }
    document_idempotency_keys(&mut document);
    document_errors(&mut document);
    document
}

/// The errors every operation of `/v1` may answer, as RFC 9457 problems
/// (`application/problem+json`): 401 without a valid token, 403 without the role, 503 when a
/// service does not answer; 404 where the path names a resource; 409 and 422 for changes;
/// 422 for malformed query parameters. Each response gets a description.
fn document_errors(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{RefOr, Response};
    let problem = |description: &str| -> RefOr<Response> {
        RefOr::T(
            serde_json::from_value(serde_json::json!({
                "description": description,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }))
            .expect("a response"),
        )
    };
    let reason = |status: &str| match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "302" => "Redirect",
        "400" => "Bad request",
        "401" => "No valid bearer token",
        "403" => "The caller lacks the role or the right",
        "404" => "Not found (or another tenant's)",
        "409" => "Conflicts with the resource's state",
        "412" => "The resource changed since the ETag given",
        "422" => "Invalid input; the problem names the field",
        "429" => "Too many requests; see Retry-After",
        "503" => "A service did not answer in time",
        _ => "Response",
    };
    for (path, item) in document.paths.paths.iter_mut() {
        let v1 = path.starts_with("/v1/");
        let names_a_resource = path.contains('{');
        let operations: [(&str, &mut Option<Operation>); 5] = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            let responses = &mut operation.responses.responses;
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if response.description.is_empty() {
                    response.description = reason(status).to_string();
                }
                // Problems are served as application/problem+json.
                let is_problem = response
                    .content
                    .get("application/json")
                    .is_some_and(|content| {
                        serde_json::to_value(content).is_ok_and(|value| {
                            value["schema"]["$ref"] == "#/components/schemas/Problem"
                        })
                    });
                if is_problem
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    response
                        .content
                        .insert("application/problem+json".to_string(), content);
                }
            }
            if !v1 {
                continue;
            }
            let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
                parameters.iter().any(|parameter| {
                    matches!(parameter, RefOr::T(parameter) if parameter.parameter_in == ParameterIn::Query)
                })
            });
            let mut statuses = vec!["401", "403", "503"];
            if names_a_resource {
                statuses.push("404");
            }
            if method != "get" {
                statuses.extend(["409", "422"]);
            } else if has_query {
                statuses.push("422");
            }
            for status in statuses {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(reason(status)));
            }
        }
    }
}

/// Every `POST` under `/v1` accepts an `Idempotency-Key` (see `idempotency.rs`).
fn document_idempotency_keys(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let Some(operation) = item.post.as_mut() else {
            continue;
        };
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: the same key with the same request returns the first \
                 response again (with `Idempotent-Replayed: true`) instead of acting twice; \
                 the same key with another request is refused (422). Keys are kept for 24 \
                 hours per caller.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(crate::idempotency::MAX_KEY_LENGTH))
                    .pattern(Some("^[!-~]+$")),
            ))
            .example(Some(serde_json::json!(
                "0b9c1f5e-5d4e-4c59-8a57-0a3b2d1e6f70"
            )))
            .build();
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(parameter.into());
        operation
            .responses
            .responses
            .entry("409".to_string())
            .or_insert_with(|| {
                serde_json::from_value(serde_json::json!({
                    "description": "A request with the same Idempotency-Key is still in progress (retry after `Retry-After`), or the resource's state forbids the change",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }))
                .expect("a response")
            });
    }
}

/// The resource modules' own documents.
fn pieces() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        crate::analytics_routes::AnalyticsApi::openapi(),
        crate::gamification_routes::GamificationApi::openapi(),
        crate::webhook_routes::WebhookApi::openapi(),
        crate::channel_routes::ChannelApi::openapi(),
        crate::key_routes::KeyApi::openapi(),
        crate::scim_routes::ScimApi::openapi(),
        crate::privacy_routes::PrivacyApi::openapi(),
    ]
}

/// The OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

#[cfg(test)]
mod tests {
    /// The committed `openapi.json` is the served document: regenerate it with
    /// `cargo run -p chorus -- openapi > openapi.json` when the API changes.
    #[test]
    fn committed_openapi_document_matches_the_code() {
        let committed = include_str!("../../../openapi.json");
        // Compared without printing both documents: they are long.
        assert!(
            committed.trim() == super::openapi_json().trim(),
            "openapi.json drifted: run `cargo run -p chorus -- openapi > openapi.json`"
        );
    }
}
