//! The OpenAPI document, generated from the handlers and committed as `openapi.json`.

use crate::{content_routes, routes};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Chorus API", description = "Employee advocacy: content, shares, accounts, engagement, points and notifications."),
    paths(
        routes::create_tenant, routes::create_user, routes::erase_user, routes::me,
        content_routes::create_post, content_routes::list_posts, content_routes::get_post, content_routes::update_post,
        content_routes::submit_post, content_routes::approve_post, content_routes::request_changes,
        content_routes::publish_post, content_routes::archive_post, content_routes::feed,
        content_routes::my_topics, content_routes::follow_topic, content_routes::unfollow_topic, content_routes::set_preferences,
        content_routes::create_rule, content_routes::list_rules, content_routes::delete_rule, content_routes::audit_log, content_routes::audit_export, content_routes::get_audit_settings, content_routes::set_audit_settings,
        content_routes::create_submission, content_routes::list_submissions, content_routes::approve_submission,
        content_routes::reject_submission, content_routes::create_survey, content_routes::list_surveys,
        content_routes::answer_survey, content_routes::survey_results,
        routes::list_accounts, routes::start_connect, routes::complete_connect, routes::disconnect_account, routes::connect_with_app_password,
        routes::create_share, routes::list_shares, routes::get_share, routes::edit_share, routes::cancel_share, routes::share_stats,
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
    document
}

/// Every `POST` under `/v1` accepts an `Idempotency-Key` (see `idempotency.rs`).
fn document_idempotency_keys(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, ResponseBuilder, Type};
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
                    .max_length(Some(crate::idempotency::MAX_KEY_LENGTH)),
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
                ResponseBuilder::new()
                    .description(
                        "A request with the same Idempotency-Key is still in progress (retry after `Retry-After`)",
                    )
                    .build()
                    .into()
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
