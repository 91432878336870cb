//! What content learns from other services: people (identity) and shares (publishing).

use crate::domain::encode_list;
use crate::entities::{member, post_share};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, inbox};
use chorus_events::UserProfileEvent;
use chorus_events::content::v1::ActionAudited;
use chorus_events::identity::v1::{UserCreated, UserDeactivated, UserErased, UserUpdated};
use chorus_events::share::v1::SharePublished;
use chorus_kit::Shutdown;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait};

const CONSUMER: &str = "content";

#[allow(clippy::too_many_arguments)]
pub fn member_row<'a>(
    tenant_id: &str,
    user_id: &str,
    display_name: &str,
    department: Option<&str>,
    location: Option<&str>,
    language: &str,
    roles: impl IntoIterator<Item = &'a str>,
    active: bool,
) -> member::ActiveModel {
    member::ActiveModel {
        tenant_id: Set(tenant_id.to_string()),
        user_id: Set(user_id.to_string()),
        display_name: Set(display_name.to_string()),
        department: Set(department.unwrap_or_default().trim().to_lowercase()),
        location: Set(location.unwrap_or_default().trim().to_lowercase()),
        language: Set(language.to_lowercase()),
        roles: Set(encode_list(roles)),
        active: Set(active),
        show_my_shares: Set(false),
    }
}

async fn upsert_member(
    db: &DatabaseConnection,
    event_id: &str,
    row: member::ActiveModel,
) -> Result<(), HandlerError> {
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, event_id).await? {
        return Ok(());
    }
    member::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([member::Column::TenantId, member::Column::UserId])
                .update_columns([
                    member::Column::DisplayName,
                    member::Column::Department,
                    member::Column::Location,
                    member::Column::Language,
                    member::Column::Roles,
                    member::Column::Active,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

fn empty_to_none(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// Keeps the local copy of people current from `user.created` and `user.updated`.
async fn spawn_profile<E: UserProfileEvent>(
    bus: &Bus,
    db: DatabaseConnection,
    durable: &str,
    shutdown: Shutdown,
) -> Result<(), BusError> {
    let handler_db = db.clone();
    consumer::spawn::<E, _, _>(
        bus,
        db,
        ConsumerSpec::new(crate::NAME, durable),
        shutdown,
        move |delivery: Delivery<E>| {
            let db = handler_db.clone();
            async move {
                let event = &delivery.event;
                let row = member_row(
                    &delivery.tenant_id,
                    event.user_id(),
                    event.display_name(),
                    empty_to_none(event.department()),
                    empty_to_none(event.location()),
                    event.language(),
                    event.roles().iter().map(String::as_str),
                    true,
                );
                upsert_member(&db, &delivery.event_id, row).await
            }
        },
    )
    .await?;
    Ok(())
}

pub async fn spawn(bus: &Bus, db: DatabaseConnection, shutdown: Shutdown) -> Result<(), BusError> {
    spawn_profile::<UserCreated>(bus, db.clone(), "content-user-created", shutdown.clone()).await?;
    spawn_profile::<UserUpdated>(bus, db.clone(), "content-user-updated", shutdown.clone()).await?;
    let deactivated_db = db.clone();
    consumer::spawn::<UserDeactivated, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "content-user-deactivated"),
        shutdown.clone(),
        move |delivery: Delivery<UserDeactivated>| {
            let db = deactivated_db.clone();
            async move {
                member::Entity::update_many()
                    .col_expr(member::Column::Active, Expr::value(false))
                    .filter(member::Column::TenantId.eq(delivery.tenant_id.clone()))
                    .filter(member::Column::UserId.eq(delivery.event.user_id.clone()))
                    .exec(&db)
                    .await?;
                Ok(())
            }
        },
    )
    .await?;
    let erased_db = db.clone();
    consumer::spawn::<UserErased, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "content-user-erased"),
        shutdown.clone(),
        move |delivery: Delivery<UserErased>| {
            let db = erased_db.clone();
            async move {
                // Shares stay counted; the person behind them is forgotten.
                let txn = db.begin().await?;
                if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
                    return Ok(());
                }
                chorus_kit::db::erase_person(
                    &txn,
                    &delivery.tenant_id,
                    &delivery.event.user_id,
                    crate::PERSONAL_DATA,
                )
                .await?;
                txn.commit().await?;
                Ok(())
            }
        },
    )
    .await?;
    let audited_db = db.clone();
    consumer::spawn::<ActionAudited, _, _>(
        bus,
        db.clone(),
        ConsumerSpec::new(crate::NAME, "content-action-audited"),
        shutdown.clone(),
        move |delivery: Delivery<ActionAudited>| {
            let db = audited_db.clone();
            async move { record_action(&db, delivery).await }
        },
    )
    .await?;
    let shared_db = db.clone();
    consumer::spawn::<SharePublished, _, _>(
        bus,
        db,
        ConsumerSpec::new(crate::NAME, "content-share-published"),
        shutdown,
        move |delivery: Delivery<SharePublished>| {
            let db = shared_db.clone();
            async move {
                let event = &delivery.event;
                let txn = db.begin().await?;
                if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
                    return Ok(());
                }
                let row = post_share::ActiveModel {
                    tenant_id: Set(delivery.tenant_id.clone()),
                    post_id: Set(event.post_id.clone()),
                    user_id: Set(event.user_id.clone()),
                    shares: Set(1),
                };
                post_share::Entity::insert(row)
                    .on_conflict(
                        OnConflict::columns([
                            post_share::Column::TenantId,
                            post_share::Column::PostId,
                            post_share::Column::UserId,
                        ])
                        .value(
                            post_share::Column::Shares,
                            Expr::col((post_share::Entity, post_share::Column::Shares)).add(1),
                        )
                        .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?;
                txn.commit().await?;
                Ok(())
            }
        },
    )
    .await?;
    Ok(())
}

/// Keeps a change made through the API in the tenant's audit log, once.
async fn record_action(
    db: &DatabaseConnection,
    delivery: Delivery<ActionAudited>,
) -> Result<(), HandlerError> {
    let event = delivery.event;
    let txn = db.begin().await?;
    if !inbox::record(&txn, CONSUMER, &delivery.event_id).await? {
        return Ok(());
    }
    let mut detail = format!(
        "status {}; via {}; roles {}",
        event.status,
        event.via,
        event.roles.join(",")
    );
    if !event.trace_id.is_empty() {
        detail.push_str(&format!("; trace {}", event.trace_id));
    }
    let row = crate::entities::audit::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        tenant_id: Set(delivery.tenant_id.clone()),
        actor: Set(event.actor.clone()),
        action: Set(format!("{} {}", event.method, event.route)),
        target: Set(event.path.clone()),
        detail: Set(detail),
        at: Set(chorus_events::from_timestamp(event.at.as_ref()).unwrap_or_else(chrono::Utc::now)),
    };
    crate::entities::audit::Entity::insert(row)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
