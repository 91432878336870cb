//! Contests: time-bound boards scoped to a topic or posts, scored by a chosen metric, for
//! people or departments. Scores move with each ledger entry; at the end the results are
//! frozen and the winners announced (`gamification.contest_finished.v1`).

use crate::domain::{self, ContestProblem};
use crate::entities::{contest, member, score};
use crate::rpc::{Gamification, HIDDEN_NAME};
use chorus_api::gamification::{Contest, ContestInput, ContestRef, ContestStanding, ContestStatus};
use chorus_api::{Empty, Page};
use chorus_bus::Outbox;
use chorus_events::gamification::v1::{
    ContestEnding, ContestFinished, ContestStarted, ContestWinner,
};
use chorus_kit::{Caller, Role, ServiceError, ServiceResult, Shutdown};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Winners announced in `ContestFinished`.
const WINNERS: usize = 3;

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    contest_id: &str,
) -> ServiceResult<contest::Model> {
    contest::Entity::find_by_id((tenant_id.to_string(), contest_id.to_string()))
        .one(conn)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("no contest {contest_id}")))
}

impl Gamification {
    /// Creates a contest (admins and curators).
    pub async fn create_contest(
        &self,
        caller: Caller,
        input: ContestInput,
    ) -> ServiceResult<Contest> {
        caller.require_any(&[Role::Admin, Role::Curator])?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(ServiceError::invalid("name must be 1 to 120 characters"));
        }
        let now = chrono::Utc::now();
        if input.starts_at < now - chrono::Duration::seconds(60) {
            return Err(ServiceError::invalid(
                "starts_at is in the past: a contest cannot start before it exists",
            ));
        }
        let topic = input
            .topic
            .as_ref()
            .map(|topic| topic.trim().to_lowercase());
        let scope = domain::ContestScope {
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            metric: input.metric,
            topic: topic.clone(),
            post_ids: input.post_ids.clone(),
        };
        let txn = self.db.begin().await?;
        let overlapping = contest::Entity::find()
            .filter(contest::Column::TenantId.eq(caller.tenant_id.clone()))
            .filter(contest::Column::EndsAt.gt(input.starts_at))
            .filter(contest::Column::StartsAt.lt(input.ends_at))
            .all(&txn)
            .await?;
        let existing: Vec<(String, domain::ContestScope)> = overlapping
            .iter()
            .map(|row| (row.name.clone(), crate::ledger::contest_scope(row)))
            .collect();
        domain::validate_contest(&scope, &existing).map_err(|problem| match problem {
            ContestProblem::Invalid(reason) => ServiceError::invalid(reason),
            ContestProblem::Conflict(reason) => ServiceError::conflict(reason),
        })?;
        let row = contest::ActiveModel {
            tenant_id: Set(caller.tenant_id.clone()),
            id: Set(uuid::Uuid::now_v7().to_string()),
            name: Set(name.to_string()),
            starts_at: Set(input.starts_at),
            ends_at: Set(input.ends_at),
            metric: Set(input.metric.as_str().to_string()),
            topic: Set(topic),
            post_ids: Set(serde_json::to_string(&input.post_ids).expect("ids serialise")),
            teams: Set(input.teams),
            finished: Set(false),
            started_announced: Set(false),
            ending_announced: Set(false),
            results: Set(None),
            created_by: Set(caller.user_id.clone()),
        };
        let created = contest::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        txn.commit().await?;
        self.contest_view(created).await
    }

    /// The tenant's contests, newest first.
    pub async fn list_contests(
        &self,
        caller: Caller,
        _request: Empty,
    ) -> ServiceResult<Page<Contest>> {
        let rows = contest::Entity::find()
            .filter(contest::Column::TenantId.eq(caller.tenant_id.clone()))
            .order_by_desc(contest::Column::StartsAt)
            .all(&self.db)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.contest_view(row).await?);
        }
        Ok(Page {
            items,
            next_cursor: None,
        })
    }

    /// A contest with its live standings or frozen results.
    pub async fn get_contest(&self, caller: Caller, request: ContestRef) -> ServiceResult<Contest> {
        let row = find(&self.db, &caller.tenant_id, &request.contest_id).await?;
        self.contest_view(row).await
    }

    async fn contest_view(&self, row: contest::Model) -> ServiceResult<Contest> {
        let now = chrono::Utc::now();
        let status = if row.finished {
            ContestStatus::Finished
        } else if now < row.starts_at {
            ContestStatus::Scheduled
        } else {
            ContestStatus::Running
        };
        let standings = match &row.results {
            Some(results) => serde_json::from_str(results).unwrap_or_default(),
            None => standings(&self.db, &row).await?,
        };
        let scope = crate::ledger::contest_scope(&row);
        Ok(Contest {
            id: row.id,
            name: row.name,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            metric: scope.metric,
            topic: scope.topic,
            post_ids: scope.post_ids,
            teams: row.teams,
            status,
            standings,
        })
    }
}

/// Final order of a contest as (rank, user id or department, score), ties broken by name.
async fn ranking<C: ConnectionTrait>(
    conn: &C,
    row: &contest::Model,
) -> Result<Vec<(u32, String, i64)>, DbErr> {
    let scores = score::Entity::find()
        .filter(score::Column::TenantId.eq(row.tenant_id.clone()))
        .filter(score::Column::Period.eq(domain::contest_period(&row.id)))
        .filter(score::Column::Visible.eq(true))
        .all(conn)
        .await?;
    if row.teams {
        let mut teams: BTreeMap<String, i64> = BTreeMap::new();
        for score in scores {
            if score.department.is_empty() {
                continue;
            }
            *teams.entry(score.department).or_default() += score.points;
        }
        return Ok(domain::rank_standings(teams.into_iter().collect()));
    }
    Ok(domain::rank_standings(
        scores
            .into_iter()
            .map(|score| (score.user_id, score.points))
            .collect(),
    ))
}

/// Current standings of a contest as people see them (hidden names stay hidden).
async fn standings<C: ConnectionTrait>(
    conn: &C,
    row: &contest::Model,
) -> Result<Vec<ContestStanding>, DbErr> {
    let ranked = ranking(conn, row).await?;
    if row.teams {
        return Ok(ranked
            .into_iter()
            .map(|(rank, team, score)| ContestStanding {
                rank,
                user_id: None,
                display_name: team.clone(),
                team: Some(team),
                score,
            })
            .collect());
    }
    let user_ids: Vec<String> = ranked
        .iter()
        .map(|(_, user_id, _)| user_id.clone())
        .collect();
    let people: HashMap<String, member::Model> = member::Entity::find()
        .filter(member::Column::TenantId.eq(row.tenant_id.clone()))
        .filter(member::Column::UserId.is_in(user_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|person| (person.user_id.clone(), person))
        .collect();
    Ok(ranked
        .into_iter()
        .map(|(rank, user_id, score)| {
            let person = people.get(&user_id);
            if person.is_some_and(|person| person.hide_name) {
                return ContestStanding {
                    rank,
                    user_id: None,
                    team: None,
                    display_name: HIDDEN_NAME.to_string(),
                    score,
                };
            }
            ContestStanding {
                rank,
                display_name: person
                    .map(|person| person.display_name.clone())
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| user_id.clone()),
                user_id: Some(user_id),
                team: None,
                score,
            }
        })
        .collect())
}

/// How long before its end a contest is announced as ending (at most half its length).
const ENDING_NOTICE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Announces contests that began (`contest_started`) and contests ending within a day
/// (`contest_ending`), once each: the flag is claimed in the transaction that queues the
/// event, whose id is derived from the contest.
pub async fn announce_due(db: &DatabaseConnection, outbox: &Outbox) -> Result<usize, DbErr> {
    let now = chrono::Utc::now();
    let mut announced = 0;
    let started = contest::Entity::find()
        .filter(contest::Column::StartedAnnounced.eq(false))
        .filter(contest::Column::StartsAt.lte(now))
        .filter(contest::Column::EndsAt.gt(now))
        .all(db)
        .await?;
    for row in started {
        let txn = db.begin().await?;
        let claimed = contest::Entity::update_many()
            .col_expr(
                contest::Column::StartedAnnounced,
                sea_orm::sea_query::Expr::value(true),
            )
            .filter(contest::Column::TenantId.eq(row.tenant_id.clone()))
            .filter(contest::Column::Id.eq(row.id.clone()))
            .filter(contest::Column::StartedAnnounced.eq(false))
            .exec(&txn)
            .await?;
        if claimed.rows_affected == 0 {
            txn.rollback().await?;
            continue;
        }
        let event = ContestStarted {
            tenant_id: row.tenant_id.clone(),
            contest_id: row.id.clone(),
            name: row.name.clone(),
            metric: row.metric.clone(),
            starts_at: Some(chorus_events::to_timestamp(row.starts_at)),
            ends_at: Some(chorus_events::to_timestamp(row.ends_at)),
        };
        outbox
            .enqueue_with_id(
                &txn,
                &event,
                format!("contest-started-{}-{}", row.tenant_id, row.id),
            )
            .await?;
        txn.commit().await?;
        announced += 1;
        tracing::info!(tenant_id = %row.tenant_id, contest_id = %row.id, "contest started");
    }
    let ending = contest::Entity::find()
        .filter(contest::Column::EndingAnnounced.eq(false))
        .filter(contest::Column::EndsAt.lte(now + ENDING_NOTICE))
        .filter(contest::Column::EndsAt.gt(now))
        .all(db)
        .await?;
    for row in ending {
        // A short contest is announced as ending at its midpoint.
        let notice = ENDING_NOTICE.min((row.ends_at - row.starts_at) / 2);
        if now < row.ends_at - notice {
            continue;
        }
        let txn = db.begin().await?;
        let claimed = contest::Entity::update_many()
            .col_expr(
                contest::Column::EndingAnnounced,
                sea_orm::sea_query::Expr::value(true),
            )
            .filter(contest::Column::TenantId.eq(row.tenant_id.clone()))
            .filter(contest::Column::Id.eq(row.id.clone()))
            .filter(contest::Column::EndingAnnounced.eq(false))
            .exec(&txn)
            .await?;
        if claimed.rows_affected == 0 {
            txn.rollback().await?;
            continue;
        }
        let event = ContestEnding {
            tenant_id: row.tenant_id.clone(),
            contest_id: row.id.clone(),
            name: row.name.clone(),
            metric: row.metric.clone(),
            ends_at: Some(chorus_events::to_timestamp(row.ends_at)),
        };
        outbox
            .enqueue_with_id(
                &txn,
                &event,
                format!("contest-ending-{}-{}", row.tenant_id, row.id),
            )
            .await?;
        txn.commit().await?;
        announced += 1;
        tracing::info!(tenant_id = %row.tenant_id, contest_id = %row.id, "contest ending soon");
    }
    if announced > 0 {
        outbox.wake();
    }
    Ok(announced)
}

/// Freezes every contest that has ended and announces its winners.
pub async fn finish_due(db: &DatabaseConnection, outbox: &Outbox) -> Result<usize, DbErr> {
    let now = chrono::Utc::now();
    let due = contest::Entity::find()
        .filter(contest::Column::Finished.eq(false))
        .filter(contest::Column::EndsAt.lte(now))
        .all(db)
        .await?;
    let mut finished = 0;
    for row in due {
        let txn = db.begin().await?;
        let ranked = ranking(&txn, &row).await?;
        let standings = standings(&txn, &row).await?;
        let frozen = contest::Entity::update_many()
            .col_expr(
                contest::Column::Finished,
                sea_orm::sea_query::Expr::value(true),
            )
            .col_expr(
                contest::Column::Results,
                sea_orm::sea_query::Expr::value(
                    serde_json::to_string(&standings).expect("standings serialise"),
                ),
            )
            .filter(contest::Column::TenantId.eq(row.tenant_id.clone()))
            .filter(contest::Column::Id.eq(row.id.clone()))
            .filter(contest::Column::Finished.eq(false))
            .exec(&txn)
            .await?;
        if frozen.rows_affected == 0 {
            txn.rollback().await?;
            continue;
        }
        let event = ContestFinished {
            tenant_id: row.tenant_id.clone(),
            contest_id: row.id.clone(),
            name: row.name.clone(),
            metric: row.metric.clone(),
            teams: row.teams,
            // The event names the winners even when they hide their name on boards, so
            // that they can be told and rewarded.
            winners: ranked
                .iter()
                .take(WINNERS)
                .map(|(rank, name, score)| ContestWinner {
                    rank: *rank,
                    user_id: if row.teams {
                        String::new()
                    } else {
                        name.clone()
                    },
                    team: if row.teams {
                        name.clone()
                    } else {
                        String::new()
                    },
                    score: *score,
                })
                .collect(),
            finished_at: Some(chorus_events::to_timestamp(row.ends_at)),
        };
        outbox
            .enqueue_with_id(
                &txn,
                &event,
                format!("contest-finished-{}-{}", row.tenant_id, row.id),
            )
            .await?;
        txn.commit().await?;
        outbox.wake();
        finished += 1;
        tracing::info!(tenant_id = %row.tenant_id, contest_id = %row.id, "contest finished");
    }
    Ok(finished)
}

/// Looks for ended contests twice a second until `shutdown`.
pub fn spawn_finisher(
    db: DatabaseConnection,
    outbox: Outbox,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = announce_due(&db, &outbox).await {
                tracing::warn!(%error, "announcing contests failed");
            }
            if let Err(error) = finish_due(&db, &outbox).await {
                tracing::warn!(%error, "finishing contests failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    })
}
