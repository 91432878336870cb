//! Instagram professional accounts through the Graph API: the account node, the two-step
//! publish (`POST /{ig-user-id}/media` container, `status_code` IN_PROGRESS -> FINISHED |
//! ERROR, `POST /{ig-user-id}/media_publish`), the rolling 24 h publishing quota
//! (`content_publishing_limit`, code 9 / subcode 2207042), the media listing, the media
//! node and media insights.

use super::store::{Container, ContainerStatus};
use super::{
    Caller, Field, GraphError, GraphRequest, graph_time, invalid_parameter, permission_error,
    select, unknown_object,
};
use crate::SimPost;
use crate::state::SimState;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value, json};

const MAX_CAPTION_CHARS: usize = 2_200;
const QUOTA_WINDOW: TimeDelta = TimeDelta::hours(24);
/// Formats Meta refuses to fetch for an image container (JPEG only).
const NOT_JPEG: &[&str] = &[".png", ".gif", ".webp", ".bmp", ".heic", ".tiff"];
const MEDIA_METRICS: &[&str] = &[
    "views",
    "reach",
    "likes",
    "comments",
    "shares",
    "saved",
    "total_interactions",
];

fn username_of(member_id: &str) -> String {
    member_id
        .to_ascii_lowercase()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '.' {
                character
            } else {
                '_'
            }
        })
        .collect()
}

/// The account node's fields (also the `instagram_business_account{...}` expansion).
pub(super) fn account_fields(member_id: &str, ig_user_id: &str, fields: &[Field]) -> Value {
    let mut node = Map::new();
    node.insert("id".into(), json!(ig_user_id));
    node.insert("username".into(), json!(username_of(member_id)));
    node.insert("name".into(), json!(format!("Member {member_id}")));
    node.insert(
        "followers_count".into(),
        json!(crate::network_size(member_id) * 2),
    );
    node.insert("media_count".into(), json!(0));
    if fields.is_empty() {
        return json!({"id": ig_user_id});
    }
    select(node, fields)
}

pub(super) fn account_node(
    state: &SimState,
    ig_user_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let member_id = state
        .meta
        .ig_member(ig_user_id)
        .ok_or_else(|| unknown_object(ig_user_id))?;
    let mut node = account_fields(&member_id, ig_user_id, &request.fields());
    if node.get("media_count").is_some() {
        let count = media_of(state, ig_user_id).len();
        node["media_count"] = json!(count);
    }
    Ok(node)
}

fn status_text(status: ContainerStatus, container: &Container) -> String {
    match status {
        ContainerStatus::InProgress => "In Progress: Media is still being processed.".into(),
        ContainerStatus::Finished => {
            "Finished: Media has been uploaded and it is ready to be published.".into()
        }
        ContainerStatus::Published => "Published: Media has been successfully published.".into(),
        ContainerStatus::Expired => "Expired: Media was not published within 24 hours.".into(),
        ContainerStatus::Error => format!(
            "Error: {}",
            container
                .failure
                .as_deref()
                .unwrap_or("Media upload has failed")
        ),
    }
}

/// `GET /{container-id}?fields=status_code,status`.
pub(super) fn container_node(container: &Container, request: &GraphRequest) -> Value {
    let status = container.status(Utc::now());
    let mut node = Map::new();
    node.insert("id".into(), json!(container.id));
    node.insert("status_code".into(), json!(status.code()));
    node.insert("status".into(), json!(status_text(status, container)));
    let fields = request.fields();
    if fields.is_empty() {
        return json!({"id": container.id});
    }
    select(node, &fields)
}

/// The caller must be the member behind the account.
fn require_owner(state: &SimState, caller: &Caller, ig_user_id: &str) -> Result<(), GraphError> {
    if state.meta.ig_member(ig_user_id).as_deref() == Some(caller.member_id.as_str()) {
        return Ok(());
    }
    Err(permission_error(
        10,
        "(#10) Application does not have permission for this action",
    ))
}

/// `POST /{ig-user-id}/media` (image_url, caption, alt_text): `{"id": container}`.
pub(super) fn create_container(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    ig_user_id: &str,
) -> Result<Value, GraphError> {
    require_owner(state, caller, ig_user_id)?;
    if request.param("video_url").is_some() || request.param("media_type").is_some() {
        return Err(invalid_parameter(
            "(#100) netsim only simulates single-image posts",
        ));
    }
    // The wording of the missing-media error is unconfirmed.
    let Some(image_url) = request.param("image_url") else {
        return Err(invalid_parameter(
            "(#100) The parameter image_url is required.",
        ));
    };
    let caption = request.param("caption").unwrap_or_default();
    let caption_chars = caption.chars().count();
    if caption_chars > MAX_CAPTION_CHARS {
        // Code and subcode of an overlong caption are unconfirmed.
        return Err(invalid_parameter(format!(
            "(#100) Param caption must be at most {MAX_CAPTION_CHARS} characters long"
        ))
        .subcode(2_207_010)
        .user(
            "Caption too long",
            "The caption is longer than 2,200 characters.",
        ));
    }
    let parsed = url::Url::parse(image_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"));
    let Some(parsed) = parsed else {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            9004,
            "Only photo or video can be accepted as media type.",
        )
        .subcode(2_207_052)
        .user(
            "Media download has failed.",
            &format!("The media could not be fetched from this uri: {image_url}"),
        ));
    };
    let path = parsed.path().to_ascii_lowercase();
    let failure = NOT_JPEG
        .iter()
        .any(|extension| path.ends_with(extension))
        .then(|| {
            "The image format is not supported. Only JPEG images can be published (2207026)."
                .to_string()
        });
    let now = Utc::now();
    let delay =
        TimeDelta::from_std(state.options.instagram_container_delay).unwrap_or(TimeDelta::zero());
    let container = Container {
        id: state.meta.next_object_number().to_string(),
        ig_user_id: ig_user_id.to_string(),
        caption: caption.to_string(),
        image_url: image_url.to_string(),
        created_at: now,
        ready_at: now + delay,
        failure,
        media_id: None,
    };
    let id = container.id.clone();
    tracing::info!(ig_user_id, container_id = %id, "netsim instagram container created");
    state.meta.insert_container(container);
    Ok(json!({"id": id}))
}

fn not_ready() -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, 9007, "Media ID is not available")
        .subcode(2_207_027)
        .user(
            "Media not ready for publishing",
            "The media is not ready for publishing, please wait for a moment",
        )
}

/// `POST /{ig-user-id}/media_publish` (creation_id): `{"id": media}`.
pub(super) fn publish(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    ig_user_id: &str,
) -> Result<Value, GraphError> {
    require_owner(state, caller, ig_user_id)?;
    let creation_id = request
        .param("creation_id")
        .ok_or_else(|| invalid_parameter("(#100) The parameter creation_id is required."))?;
    let container = state
        .meta
        .container(creation_id)
        .filter(|container| container.ig_user_id == ig_user_id)
        .ok_or_else(|| unknown_object(creation_id))?;
    match container.status(Utc::now()) {
        ContainerStatus::Finished => {}
        ContainerStatus::InProgress | ContainerStatus::Error => return Err(not_ready()),
        ContainerStatus::Expired => {
            return Err(invalid_parameter("The media you are trying to publish has expired. Please try again with a new media.")
                .subcode(2_207_020));
        }
        // Graph's answer to publishing a container twice is unconfirmed.
        ContainerStatus::Published => {
            return Err(
                invalid_parameter("(#100) The media has already been published").subcode(2_207_008),
            );
        }
    }
    let media_id = state.meta.next_object_number().to_string();
    let quota = state.options.instagram_publish_quota;
    if let Err(frees_at) = state
        .meta
        .record_publish(creation_id, &media_id, quota, QUOTA_WINDOW)
    {
        tracing::info!(ig_user_id, frees_at = ?frees_at, "netsim instagram publish refused: quota");
        // The user title and message are unconfirmed; code and subcode are observed.
        return Err(GraphError::new(StatusCode::BAD_REQUEST, 9, "Application request limit reached")
            .subcode(2_207_042)
            .user("Maximum posts reached", "You reached the maximum number of posts that can be published through the API in 24 hours."));
    }
    state.insert_post(SimPost {
        network: "instagram".to_string(),
        urn: media_id.clone(),
        author: ig_user_id.to_string(),
        commentary: container.caption,
        created_at: Utc::now(),
        reactions: 0,
        comments: 0,
        reshares: 0,
        impressions: 0,
        media_url: Some(container.image_url),
    });
    tracing::info!(ig_user_id, media_id = %media_id, "netsim instagram media published");
    Ok(json!({"id": media_id}))
}

/// `GET /{ig-user-id}/content_publishing_limit?fields=quota_usage,config`.
pub(super) fn publishing_limit(
    state: &SimState,
    caller: &Caller,
    ig_user_id: &str,
) -> Result<Value, GraphError> {
    require_owner(state, caller, ig_user_id)?;
    let (used, _) = state.meta.publish_usage(ig_user_id, QUOTA_WINDOW);
    Ok(json!({"data": [{
        "quota_usage": used,
        "config": {"quota_total": state.options.instagram_publish_quota, "quota_duration": QUOTA_WINDOW.num_seconds()},
    }]}))
}

fn media_of(state: &SimState, ig_user_id: &str) -> Vec<SimPost> {
    let mut media: Vec<SimPost> = state
        .posts_of("instagram")
        .into_iter()
        .filter(|post| post.author == ig_user_id)
        .collect();
    media.reverse();
    media
}

/// `https://www.instagram.com/p/{shortcode}/`, the shortcode derived from the media id.
fn permalink(media_id: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut number: u64 = media_id.parse().unwrap_or(0);
    let mut shortcode = Vec::new();
    while number > 0 {
        shortcode.push(ALPHABET[(number % 64) as usize]);
        number /= 64;
    }
    shortcode.reverse();
    format!(
        "https://www.instagram.com/p/{}/",
        String::from_utf8_lossy(&shortcode)
    )
}

fn media_fields(state: &SimState, post: &SimPost, fields: &[Field]) -> Value {
    let member_id = state.meta.ig_member(&post.author).unwrap_or_default();
    let mut node = Map::new();
    node.insert("id".into(), json!(post.urn));
    node.insert("caption".into(), json!(post.commentary));
    node.insert("media_type".into(), json!("IMAGE"));
    node.insert("media_product_type".into(), json!("FEED"));
    node.insert("timestamp".into(), json!(graph_time(post.created_at)));
    node.insert("permalink".into(), json!(permalink(&post.urn)));
    node.insert("username".into(), json!(username_of(&member_id)));
    node.insert("like_count".into(), json!(post.reactions));
    node.insert("comments_count".into(), json!(post.comments));
    if let Some(container) = state.meta.media_container(&post.urn) {
        node.insert("media_url".into(), json!(container.image_url));
    }
    if fields.is_empty() {
        return json!({"id": post.urn});
    }
    select(node, fields)
}

fn media_post(state: &SimState, media_id: &str) -> Result<SimPost, GraphError> {
    state
        .post(media_id)
        .filter(|post| post.network == "instagram")
        .ok_or_else(|| unknown_object(media_id))
}

/// `GET /{ig-media-id}?fields=...`.
pub(super) fn media_node(
    state: &SimState,
    media_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let post = media_post(state, media_id)?;
    Ok(media_fields(state, &post, &request.fields()))
}

/// `GET /{ig-user-id}/media?fields=id,caption,timestamp,permalink`: newest first.
pub(super) fn list_media(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    ig_user_id: &str,
) -> Result<Value, GraphError> {
    require_owner(state, caller, ig_user_id)?;
    let fields = request.fields();
    let listed_before = super::facebook::listed_before(state);
    let mut media = media_of(state, ig_user_id);
    media.retain(|post| post.created_at <= listed_before);
    Ok(super::facebook::page_of(request, media, |post| {
        media_fields(state, post, &fields)
    }))
}

/// `GET /{ig-media-id}/insights?metric=views,reach,likes,comments,shares,saved`.
pub(super) fn media_insights(
    state: &SimState,
    media_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let post = media_post(state, media_id)?;
    let metrics = request
        .param("metric")
        .ok_or_else(|| invalid_parameter("(#100) The parameter metric is required"))?;
    let mut data = Vec::new();
    for metric in metrics.split(',').map(str::trim) {
        let value = match metric {
            "views" => post.impressions,
            // Netsim counts no unique accounts; reach is most of the views.
            "reach" => post.impressions * 7 / 10,
            "likes" => post.reactions,
            "comments" => post.comments,
            "shares" => post.reshares,
            "saved" => 0,
            "total_interactions" => post.reactions + post.comments + post.reshares,
            // `impressions` is deprecated for new media (unconfirmed details).
            _ => {
                return Err(invalid_parameter(format!(
                    "(#100) metric[0] must be one of the following values: {}",
                    MEDIA_METRICS.join(", ")
                )));
            }
        };
        data.push(json!({
            "name": metric,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": metric,
            "id": format!("{media_id}/insights/{metric}/lifetime"),
        }));
    }
    Ok(json!({"data": data}))
}
