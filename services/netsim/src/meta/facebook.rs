//! Facebook Pages: the Page node, `POST /{page-id}/feed`, `published_posts`, the post node
//! with its reactions/comments/shares summaries, and post insights.

use super::store::ig_user_id_of;
use super::{
    Caller, GraphError, GraphRequest, graph_time, invalid_parameter, parse_fields,
    permission_error, select, unknown_object,
};
use crate::SimPost;
use crate::state::SimState;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value, json};

/// Longest message of a Page post (postiz's figure; unconfirmed officially).
const MAX_MESSAGE_CHARS: usize = 63_206;
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 100;
/// Insights metrics answered for a post; netsim keeps one impressions counter, so the
/// "unique" and "media view" variants all read it.
const VIEW_METRICS: &[&str] = &[
    "post_impressions",
    "post_impressions_unique",
    "post_media_view",
    "post_total_media_view_unique",
];

fn page_name(member_id: &str) -> String {
    format!("Page of {member_id}")
}

/// The Page node (`/me` with a Page token, or `/{page-id}`).
pub(super) fn page_node(
    state: &SimState,
    page_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let member_id = state
        .meta
        .page_member(page_id)
        .ok_or_else(|| unknown_object(page_id))?;
    let followers = crate::network_size(&member_id) * 3;
    let mut node = Map::new();
    node.insert("id".into(), json!(page_id));
    node.insert("name".into(), json!(page_name(&member_id)));
    node.insert("followers_count".into(), json!(followers));
    node.insert("fan_count".into(), json!(followers * 9 / 10));
    node.insert(
        "link".into(),
        json!(format!("https://www.facebook.com/{page_id}")),
    );
    let fields = request.fields();
    if fields.is_empty() {
        node.remove("followers_count");
        node.remove("fan_count");
        node.remove("link");
        return Ok(Value::Object(node));
    }
    let mut selected = select(node, &fields);
    if let Some(field) = fields
        .iter()
        .find(|field| field.name == "instagram_business_account")
    {
        let ig_user_id = ig_user_id_of(&member_id);
        let subfields = field
            .subfields
            .as_deref()
            .map(parse_fields)
            .unwrap_or_default();
        selected["instagram_business_account"] =
            super::instagram::account_fields(&member_id, &ig_user_id, &subfields);
    }
    Ok(selected)
}

fn permalink(post_id: &str) -> String {
    match post_id.split_once('_') {
        Some((page, post)) => format!("https://www.facebook.com/{page}/posts/{post}"),
        None => format!("https://www.facebook.com/{post_id}"),
    }
}

fn facebook_post(state: &SimState, post_id: &str) -> Result<SimPost, GraphError> {
    state
        .post(post_id)
        .filter(|post| post.network == "facebook")
        .ok_or_else(|| unknown_object(post_id))
}

fn post_fields(post: &SimPost, fields: &[super::Field]) -> Value {
    let mut node = Map::new();
    node.insert("id".into(), json!(post.urn));
    node.insert("message".into(), json!(post.commentary));
    node.insert("created_time".into(), json!(graph_time(post.created_at)));
    node.insert("permalink_url".into(), json!(permalink(&post.urn)));
    if fields.is_empty() {
        node.remove("permalink_url");
        return Value::Object(node);
    }
    let mut selected = select(node, fields);
    for field in fields {
        let with_summary = field.raw.contains("summary(");
        let count = match field.name.as_str() {
            "reactions" | "likes" => post.reactions,
            "comments" => post.comments,
            "shares" => {
                // Graph leaves `shares` out until someone shares.
                if post.reshares > 0 {
                    selected["shares"] = json!({"count": post.reshares});
                }
                continue;
            }
            _ => continue,
        };
        let mut edge = json!({"data": []});
        if with_summary {
            edge["summary"] = json!({"total_count": count});
        }
        selected[field.name.as_str()] = edge;
    }
    selected
}

/// `GET /{page-id}_{post-id}`.
pub(super) fn post_node(
    state: &SimState,
    post_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let post = facebook_post(state, post_id)?;
    Ok(post_fields(&post, &request.fields()))
}

/// `GET /{post-id}/insights?metric=a,b`.
pub(super) fn post_insights(
    state: &SimState,
    post_id: &str,
    request: &GraphRequest,
) -> Result<Value, GraphError> {
    let post = facebook_post(state, post_id)?;
    let metrics = request
        .param("metric")
        .ok_or_else(|| invalid_parameter("(#100) The parameter metric is required"))?;
    let mut data = Vec::new();
    for metric in metrics.split(',').map(str::trim) {
        let value = if VIEW_METRICS.contains(&metric) {
            json!(post.impressions)
        } else {
            match metric {
                "post_clicks" => json!(post.reactions / 2),
                "post_reactions_by_type_total" => json!({"like": post.reactions}),
                _ => {
                    return Err(invalid_parameter(
                        "(#100) The value must be a valid insights metric",
                    ));
                }
            }
        };
        data.push(json!({
            "name": metric,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": metric,
            "id": format!("{post_id}/insights/{metric}/lifetime"),
        }));
    }
    Ok(json!({"data": data}))
}

/// The Page token of `page_id`, or Graph's permission error.
fn require_page_token(caller: &Caller, page_id: &str, code: i64) -> Result<(), GraphError> {
    if caller.page_id.as_deref() == Some(page_id) {
        return Ok(());
    }
    Err(match code {
        210 => permission_error(
            210,
            "(#210) A page access token is required to request this resource.",
        ),
        _ => permission_error(
            200,
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ),
    })
}

/// `POST /{page-id}/feed` (message, link): 200 `{"id":"{page-id}_{post-id}"}`.
pub(super) fn create_post(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    page_id: &str,
) -> Result<Value, GraphError> {
    require_page_token(caller, page_id, 200)?;
    let message = request.param("message").unwrap_or_default();
    let link = request.param("link");
    if message.trim().is_empty() && link.is_none() {
        return Err(invalid_parameter("(#100) Missing message or attachment"));
    }
    let message_chars = message.chars().count();
    if message_chars > MAX_MESSAGE_CHARS {
        return Err(invalid_parameter(format!(
            "(#100) Param message must be at most {MAX_MESSAGE_CHARS} characters long"
        )));
    }
    if request.param("published") == Some("false") {
        return Err(invalid_parameter(
            "(#100) netsim only simulates published posts",
        ));
    }
    let commentary = if message.is_empty() {
        link.unwrap_or_default().to_string()
    } else {
        message.to_string()
    };
    let now = Utc::now();
    let horizon =
        now - TimeDelta::from_std(state.options.duplicate_window).unwrap_or(TimeDelta::MAX);
    let duplicate = state.posts_of("facebook").into_iter().any(|post| {
        post.author == page_id && post.commentary == commentary && post.created_at > horizon
    });
    if duplicate {
        tracing::info!(page_id, "netsim facebook post refused: duplicate");
        state.count_duplicate("facebook");
        return Err(
            GraphError::new(StatusCode::BAD_REQUEST, 506, "(#506) Duplicate status message")
                .user(
                    "Duplicate Status Update",
                    "This status update is identical to the last one you posted. Try posting something different, or delete your previous update.",
                ),
        );
    }
    let post_id = format!("{page_id}_{}", state.meta.next_object_number());
    state.insert_post(SimPost {
        network: "facebook".to_string(),
        urn: post_id.clone(),
        author: page_id.to_string(),
        commentary,
        created_at: now,
        reactions: 0,
        comments: 0,
        reshares: 0,
        impressions: 0,
        media_url: None,
    });
    tracing::info!(page_id, post_id = %post_id, "netsim facebook post created");
    let mut reply = json!({"id": post_id});
    if request
        .fields()
        .iter()
        .any(|field| field.name == "permalink_url")
    {
        reply["permalink_url"] = json!(permalink(&post_id));
    }
    Ok(reply)
}

/// `GET /{page-id}/published_posts` (and `/feed`, `/posts`): newest first, cursor paging.
pub(super) fn list_posts(
    state: &SimState,
    caller: &Caller,
    request: &GraphRequest,
    page_id: &str,
) -> Result<Value, GraphError> {
    require_page_token(caller, page_id, 210)?;
    let listed_before = listed_before(state);
    let mut posts: Vec<SimPost> = state
        .posts_of("facebook")
        .into_iter()
        .filter(|post| post.author == page_id && post.created_at <= listed_before)
        .collect();
    posts.reverse();
    let fields = request.fields();
    Ok(page_of(request, posts, |post| post_fields(post, &fields)))
}

/// Posts created after this are not listed yet (`NetsimOptions::listing_lag`).
pub(super) fn listed_before(state: &SimState) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        - chrono::TimeDelta::from_std(state.options.listing_lag).unwrap_or(chrono::TimeDelta::MAX)
}

/// One page of `items` (newest first) after the `after` cursor, Graph's paging envelope.
pub(super) fn page_of(
    request: &GraphRequest,
    items: Vec<SimPost>,
    render: impl Fn(&SimPost) -> Value,
) -> Value {
    let limit = request
        .param("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let start = request
        .param("after")
        .and_then(|cursor| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|after| items.iter().position(|item| item.urn == after))
        .map_or(0, |position| position + 1);
    let slice: Vec<&SimPost> = items.iter().skip(start).take(limit).collect();
    let cursor = |post: &SimPost| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(post.urn.as_bytes())
    };
    let data: Vec<Value> = slice.iter().map(|post| render(post)).collect();
    let mut body = json!({ "data": data });
    if let (Some(first), Some(last)) = (slice.first(), slice.last()) {
        let after = cursor(last);
        let mut paging = json!({"cursors": {"before": cursor(first), "after": after}});
        if start + slice.len() < items.len()
            && let Some(next) = request.next_link(&after)
        {
            paging["next"] = json!(next);
        }
        body["paging"] = paging;
    }
    body
}
