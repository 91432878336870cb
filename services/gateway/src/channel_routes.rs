//! Notification preferences (per person), e-mail deliveries, and the tenant's Slack and
//! Microsoft Teams team channels (admins).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiJson;
use crate::routes::call;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chorus_api::Empty;
use chorus_api::notifications::{
    ChannelDeliveries, ChannelDelivery, CreateTeamChannel, Device, DeviceRef, Devices,
    DigestFrequency, KindPreference, NotificationPreferences, PushPlatform, QuietHours,
    RegisterDevice, TeamChannel, TeamChannelRef, TeamChannelType, TeamChannels,
};
use chorus_kit::ServiceResult;
use utoipa::OpenApi;

type Problem = chorus_kit::error::Problem;

const SERVICE: &str = "notifications";

#[derive(OpenApi)]
#[openapi(
    paths(
        get_preferences,
        set_preferences,
        my_deliveries,
        create_team_channel,
        list_team_channels,
        delete_team_channel,
        team_channel_deliveries,
        register_device,
        list_devices,
        remove_device
    ),
    components(schemas(
        KindPreference,
        QuietHours,
        DigestFrequency,
        NotificationPreferences,
        TeamChannelType,
        CreateTeamChannel,
        TeamChannel,
        TeamChannels,
        ChannelDelivery,
        ChannelDeliveries,
        PushPlatform,
        RegisterDevice,
        Device,
        Devices
    ))
)]
pub struct ChannelApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/me/notification-preferences",
            get(get_preferences).put(set_preferences),
        )
        .route("/v1/me/notification-deliveries", get(my_deliveries))
        .route("/v1/me/devices", get(list_devices).post(register_device))
        .route(
            "/v1/me/devices/{device_id}",
            axum::routing::delete(remove_device),
        )
        .route(
            "/v1/notification-channels",
            get(list_team_channels).post(create_team_channel),
        )
        .route(
            "/v1/notification-channels/{channel_id}",
            axum::routing::delete(delete_team_channel),
        )
        .route(
            "/v1/notification-channels/{channel_id}/deliveries",
            get(team_channel_deliveries),
        )
}

/// My notification preferences: every kind with its channels (in-app, e-mail), defaults
/// where I chose nothing, my quiet hours and their time zone.
#[utoipa::path(get, path = "/v1/me/notification-preferences", tag = "notifications",
    responses((status = 200, body = NotificationPreferences), (status = 401, body = Problem)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<NotificationPreferences>> {
    Ok(Json(
        call(&state, SERVICE, "preferences_get", &caller, &Empty {}).await?,
    ))
}

/// Change my preferences: the kinds listed in `items` take the given channels (others keep
/// theirs); `quiet_hours`, `time_zone` and `digest` are replaced (null clears them). E-mails
/// due in quiet hours are sent when they end. With `digest` (`daily`, or `weekly` on Mondays)
/// the inbox notifications that do not go by e-mail come as one e-mail at 08:00 local time.
#[utoipa::path(put, path = "/v1/me/notification-preferences", operation_id = "set_notification_preferences", tag = "notifications",
    request_body(content = NotificationPreferences, example = json!({
        "items": [{"kind": "points_awarded", "in_app": true, "email": false},
                  {"kind": "share_failed", "in_app": true, "email": true}],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "time_zone": "Europe/Paris", "digest": "daily"})),
    responses((status = 200, body = NotificationPreferences), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn set_preferences(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<NotificationPreferences>,
) -> ServiceResult<Json<NotificationPreferences>> {
    Ok(Json(
        call(&state, SERVICE, "preferences_set", &caller, &input).await?,
    ))
}

/// My e-mail notifications and what became of them (sent, pending with the next attempt,
/// failed with the server's answer, skipped), newest first.
#[utoipa::path(get, path = "/v1/me/notification-deliveries", tag = "notifications",
    responses((status = 200, body = ChannelDeliveries), (status = 401, body = Problem)))]
pub async fn my_deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<ChannelDeliveries>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "channel_deliveries_mine",
            &caller,
            &Empty {},
        )
        .await?,
    ))
}

/// Post the tenant's notifications of chosen kinds to a Slack or Microsoft Teams channel
/// through its incoming webhook URL (admins). The URL is kept encrypted and only its host
/// is shown again; URLs resolving to private, loopback or link-local addresses are refused
/// unless an admin allows private destinations (`PUT /v1/webhooks/settings`).
#[utoipa::path(post, path = "/v1/notification-channels", tag = "notifications",
    request_body(content = CreateTeamChannel, example = json!({
        "type": "slack", "name": "#social-team",
        "url": "https://hooks.slack.com/services/T000/B000/XXXX",
        "kinds": ["webhook_endpoint_disabled", "share_failed"]})),
    responses((status = 201, body = TeamChannel), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_team_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<CreateTeamChannel>,
) -> ServiceResult<(StatusCode, Json<TeamChannel>)> {
    let created: TeamChannel =
        call(&state, SERVICE, "team_channel_create", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The tenant's team channels (admins).
#[utoipa::path(get, path = "/v1/notification-channels", tag = "notifications",
    responses((status = 200, body = TeamChannels), (status = 403, body = Problem)))]
pub async fn list_team_channels(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<TeamChannels>> {
    Ok(Json(
        call(&state, SERVICE, "team_channel_list", &caller, &Empty {}).await?,
    ))
}

/// Remove a team channel (admins); messages not yet posted are skipped.
#[utoipa::path(delete, path = "/v1/notification-channels/{channel_id}", tag = "notifications",
    params(("channel_id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_team_channel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(channel_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        SERVICE,
        "team_channel_delete",
        &caller,
        &TeamChannelRef { channel_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What was posted to a team channel and what became of it (admins).
#[utoipa::path(get, path = "/v1/notification-channels/{channel_id}/deliveries", tag = "notifications",
    params(("channel_id" = String, Path)),
    responses((status = 200, body = ChannelDeliveries), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn team_channel_deliveries(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(channel_id): Path<String>,
) -> ServiceResult<Json<ChannelDeliveries>> {
    Ok(Json(
        call(
            &state,
            SERVICE,
            "team_channel_deliveries",
            &caller,
            &TeamChannelRef { channel_id },
        )
        .await?,
    ))
}

/// Register my phone or tablet for push with the device token the app got from FCM or APNs
/// (registering the same token again returns the same device). Pushes follow my
/// preferences' `push` choices and quiet hours; a token the platform reports as no longer
/// valid is removed.
#[utoipa::path(post, path = "/v1/me/devices", tag = "notifications",
    request_body(content = RegisterDevice, example = json!({"platform": "fcm",
        "token": "fKq3cE1xS0uB1bq5Z1mXv2:APA91bH8x1c2d3e4f5g6h7i8j9k0", "name": "Pixel 8"})),
    responses((status = 201, body = Device), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn register_device(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(input): ApiJson<RegisterDevice>,
) -> ServiceResult<(StatusCode, Json<Device>)> {
    let device: Device = call(&state, SERVICE, "device_register", &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(device)))
}

/// My registered devices (tokens are not shown).
#[utoipa::path(get, path = "/v1/me/devices", tag = "notifications",
    responses((status = 200, body = Devices), (status = 401, body = Problem)))]
pub async fn list_devices(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ServiceResult<Json<Devices>> {
    Ok(Json(
        call(&state, SERVICE, "device_list", &caller, &Empty {}).await?,
    ))
}

/// Stop pushing to a device (for example at sign-out in the app).
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "notifications",
    params(("device_id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_device(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(device_id): Path<String>,
) -> ServiceResult<StatusCode> {
    let _: Empty = call(
        &state,
        SERVICE,
        "device_remove",
        &caller,
        &DeviceRef { device_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
