//! The publisher: takes due shares and posts them, never twice.
//!
//! The attempt is recorded (`in_flight = true`) before the network call. When a delivery
//! finds an attempt still in flight (a crash or a timeout after the request left), it first
//! reconciles: it asks the network for the post and re-posts only when the network confirms
//! it is absent.

use crate::NetworkClient;
use crate::accounts::Accounts;
use crate::entities::{account, publication};
use crate::lease::{self, Lease};
use chorus_bus::consumer::{self, ConsumerSpec, Delivery, HandlerError};
use chorus_bus::{Bus, BusError, Outbox};
use chorus_events::share::v1 as events;
use chorus_kit::Shutdown;
use chorus_social::{Network, NetworkError, PostRequest, PostedRef};
use chorus_telemetry::metrics;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait, TryInsertResult, TryIntoModel,
};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

static OUTCOMES: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_publish_outcomes_total",
        "Publish attempts by network and outcome",
        &["network", "outcome"],
    )
});
static RATE_LIMITED: LazyLock<metrics::IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "chorus_publish_rate_limited_total",
        "Refusals for a rate limit received from a network (the target is zero)",
        &["network"],
    )
});

/// A wait for the account's posting window longer than this is told to the advocate.
const TELL_WAIT_AFTER: Duration = Duration::from_secs(2);

/// The network's name as people write it.
fn network_name(network: &str) -> &'static str {
    Network::parse(network).map_or("the network", Network::display_name)
}

/// Longest wait for a network's rate-limit window while holding the delivery; longer ones
/// go back to the queue with a delay.
const MAX_HELD_WAIT: Duration = Duration::from_secs(15 * 60);

static HELD: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_publish_held_seconds",
        "Time a share handed over ahead of its due time waited for it",
        &["network"],
    )
});
static LATE: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_publish_start_lateness_seconds",
        "Time between a share's due time and the start of its attempt",
        &["network"],
    )
});
static OVERHEAD: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_publish_overhead_seconds",
        "Publisher time per attempt outside the network's calls and the limiters' waits",
        &["network"],
    )
});

static LIMIT_WAIT: LazyLock<metrics::HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "chorus_publish_rate_limit_wait_seconds",
        "Time spent waiting for a rate limiter",
        &["network"],
    )
});

pub struct Publisher {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub accounts: Arc<Accounts>,
    pub networks: Arc<HashMap<Network, NetworkClient>>,
    /// Which replica this is, and so which accounts it publishes for.
    pub ownership: Ownership,
    /// Shares handled at the same time by each network's consumer.
    pub concurrency: usize,
    /// How long a publication's lease lasts unless renewed.
    pub lease_duration: Duration,
    /// Deliveries of a share before giving up, and the delays between them.
    pub max_attempts: i64,
    pub retry_delays: Vec<Duration>,
}

/// What `begin_attempt` found.
enum Begun {
    /// This delivery holds the lease: the record as the previous attempt left it.
    Mine(Box<publication::Model>),
    /// The share is already final: nothing to do.
    Final,
    /// Another delivery holds a live lease, until about this time.
    HeldElsewhere(chrono::DateTime<chrono::Utc>),
}

/// Which partitions of `share.due` a replica owns: partition p belongs to replica
/// p mod `replicas`. Shown as `<index>of<replicas>` (span attribute, durable names).
#[derive(Debug, Clone, Copy)]
pub struct Ownership {
    replica_index: u32,
    replicas: u32,
}

impl Ownership {
    /// Replica `replica_index` of `replicas` (0 counts as 1).
    pub fn new(replica_index: u32, replicas: u32) -> anyhow::Result<Ownership> {
        let replicas = replicas.max(1);
        anyhow::ensure!(
            replica_index < replicas,
            "CHORUS_PUBLISHING__REPLICA_INDEX {replica_index} must be below CHORUS_PUBLISHING__REPLICAS {replicas}"
        );
        Ok(Ownership {
            replica_index,
            replicas,
        })
    }

    pub fn partitions(self) -> Vec<u32> {
        (0..chorus_events::SHARE_DUE_PARTITIONS)
            .filter(|partition| partition % self.replicas == self.replica_index)
            .collect()
    }
}

impl std::fmt::Display for Ownership {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}of{}", self.replica_index, self.replicas)
    }
}

/// One consumer per enabled network, each on the partitions this replica owns.
pub async fn spawn(
    bus: &Bus,
    publisher: Arc<Publisher>,
    published: &[Network],
    shutdown: Shutdown,
) -> Result<(), BusError> {
    let ownership = publisher.ownership;
    let mut networks: Vec<Network> = publisher
        .networks
        .keys()
        .copied()
        .filter(|network| published.contains(network))
        .collect();
    networks.sort_by_key(|network| network.as_str());
    for &network in &networks {
        let db = publisher.db.clone();
        // The durable name carries the split: a new replica count starts new consumers
        // (deliveries already final are skipped by `begin_attempt`).
        let durable = format!("publishing-share-due-{network}-{ownership}");
        let mut spec = ConsumerSpec::new(crate::NAME, durable)
            .concurrency(publisher.concurrency)
            .filter_subjects(chorus_events::share_due_filters(
                network.as_str(),
                ownership.partitions(),
            ));
        spec.max_deliver = publisher.max_attempts;
        spec.retry_delays = publisher.retry_delays.clone();
        let max_deliver = spec.max_deliver;
        let publisher = publisher.clone();
        consumer::spawn::<events::ShareDue, _, _>(
            bus,
            db,
            spec,
            shutdown.clone(),
            move |delivery| {
                let publisher = publisher.clone();
                async move { publisher.handle(delivery, max_deliver).await }
            },
        )
        .await?;
    }
    tracing::info!(
        replica_index = ownership.replica_index,
        replicas = ownership.replicas,
        networks = ?networks.iter().map(|network| network.as_str()).collect::<Vec<_>>(),
        "publishers started"
    );
    Ok(())
}

/// How one attempt ended.
pub(crate) enum Attempt {
    Published {
        posted: PostedRef,
        reconciled: bool,
        /// The account's audience when the share went out (carried by the event).
        audience_size: i64,
    },
    Failed {
        code: &'static str,
        reason: String,
    },
    NeedsReconnect {
        reason: String,
    },
    /// Gave up without knowing whether the post exists: an attempt may have reached the
    /// network and could not be found or ruled out. Never posted again on its own, never
    /// called failed: an administrator resolves it.
    Unconfirmed {
        reason: String,
    },
    /// The lease could not be confirmed before a network call: another delivery took the
    /// share (or the database cannot tell), so this one stops without calling.
    Abandoned {
        reason: String,
    },
}

impl Publisher {
    async fn handle(
        &self,
        delivery: Delivery<events::ShareDue>,
        max_deliver: i64,
    ) -> Result<(), HandlerError> {
        let span = tracing::info_span!(
            "publish",
            service = "publishing",
            tenant_id = %delivery.tenant_id,
            share_id = %delivery.event.share_id,
            network = %delivery.event.network,
            replica = %self.ownership,
            attempt = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        self.publish_due(delivery, max_deliver)
            .instrument(span)
            .await
    }

    async fn publish_due(
        &self,
        delivery: Delivery<events::ShareDue>,
        max_deliver: i64,
    ) -> Result<(), HandlerError> {
        let due = delivery.event;
        let span = tracing::Span::current();
        let started = Instant::now();
        let lease = Lease::new(self.db.clone(), &due.share_id, self.lease_duration);
        let record = match self
            .begin_attempt(&delivery.tenant_id, &due, &lease)
            .await?
        {
            Begun::Mine(record) => record,
            Begun::Final => {
                span.record("outcome", "already_final");
                return Ok(());
            }
            Begun::HeldElsewhere(until) => {
                // Another delivery of this share is at work: wait for it to finish (the
                // share is then final) or for its lease to end (its holder died).
                span.record("outcome", "held_elsewhere");
                lease::count("held_elsewhere");
                let wait = (until - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(500));
                tracing::info!(share_id = %due.share_id, wait_ms = wait.as_millis() as u64, "another delivery holds the publication, waiting for it");
                return Err(HandlerError::Defer {
                    // Jitter, so that deferred copies do not come back together.
                    delay: wait + Duration::from_millis(fastrand::u64(0..1_000)),
                    reason: "another delivery holds the publication's lease".into(),
                });
            }
        };
        lease::count("taken");
        span.record("attempt", record.attempts);
        let keeper = lease.keep();
        let work = async {
            let mut outside = Outside::default();
            // The scheduler hands shares over a little ahead of their time (its emit lead),
            // so that the attempt is recorded when the share falls due; nothing goes out
            // before it.
            if let Some(due_at) = chorus_events::from_timestamp(due.due_at.as_ref()) {
                let now = chrono::Utc::now();
                match (due_at - now).to_std() {
                    Ok(early) if !early.is_zero() => {
                        HELD.with_label_values(&[&due.network])
                            .observe(early.as_secs_f64());
                        outside.timed(tokio::time::sleep(early)).await;
                    }
                    _ => LATE
                        .with_label_values(&[&due.network])
                        .observe((now - due_at).to_std().unwrap_or_default().as_secs_f64()),
                }
            }
            let outcome = self
                .publish_recorded(
                    &record,
                    &lease,
                    &due,
                    delivery.delivered,
                    max_deliver,
                    &mut outside,
                )
                .await;
            OVERHEAD
                .with_label_values(&[&due.network])
                .observe(started.elapsed().saturating_sub(outside.0).as_secs_f64());
            outcome
        };
        tokio::select! {
            outcome = work => outcome,
            () = keeper.lost() => {
                // A call of ours may have left: the next holder reconciles before posting.
                span.record("outcome", "lease_lost");
                tracing::warn!(share_id = %due.share_id, "publication lease lost, attempt stopped");
                Err(HandlerError::Retry("the publication's lease was lost".into()))
            }
        }
    }

    /// Publishes a share whose attempt is recorded, and records how it ended.
    async fn publish_recorded(
        &self,
        record: &publication::Model,
        lease: &Lease,
        due: &events::ShareDue,
        delivered: i64,
        max_deliver: i64,
        outside: &mut Outside,
    ) -> Result<(), HandlerError> {
        let span = tracing::Span::current();
        let network = Network::parse(&due.network);
        let client = network.and_then(|network| self.networks.get(&network).cloned());
        let Some(client) = client else {
            let reason = format!("network {} is not enabled", due.network);
            return self
                .finish(
                    record,
                    lease,
                    Attempt::Failed {
                        code: "configuration",
                        reason,
                    },
                )
                .await;
        };
        // One attempt of an account at a time, held until its outcome is recorded: the next
        // share of the account starts from what this one wrote.
        let _turn = outside.timed(client.limiter.turn(&record.account_id)).await;
        match self.attempt(record, lease, &client, outside).await {
            Ok(Attempt::Abandoned { reason }) => {
                tracing::Span::current().record("outcome", "abandoned");
                tracing::warn!(share_id = %record.share_id, %reason, "attempt abandoned before calling the network");
                Err(HandlerError::Retry(reason))
            }
            Ok(outcome) => self.finish(record, lease, outcome).await,
            Err(error) => {
                let transient_reason = error.to_string();
                OUTCOMES
                    .with_label_values(&[&due.network, error.code()])
                    .inc();
                let last_delivery = delivered >= max_deliver;
                if last_delivery {
                    let reason = format!(
                        "gave up after {} attempts: {transient_reason}",
                        record.attempts
                    );
                    // An attempt that may have reached the network (this one, or an earlier
                    // one never reconciled) leaves the share unconfirmed, never failed.
                    let may_exist =
                        matches!(error, NetworkError::OutcomeUnknown(_)) || record.in_flight;
                    let outcome = if may_exist {
                        Attempt::Unconfirmed { reason }
                    } else {
                        Attempt::Failed {
                            code: error.code(),
                            reason,
                        }
                    };
                    return self.finish(record, lease, outcome).await;
                }
                span.record("outcome", error.code());
                self.note_error(record, lease, &error).await?;
                tracing::warn!(share_id = %record.share_id, network = %due.network, error = %transient_reason, "publish attempt failed, will retry");
                Err(HandlerError::Retry(transient_reason))
            }
        }
    }

    /// Records the attempt before any network call, marked in flight, and takes the
    /// publication's lease: a crash from here on makes the next holder look for the post on
    /// the network before posting. Returns the record as the previous attempt left it
    /// (`in_flight` says whether to reconcile). The first delivery costs one INSERT.
    async fn begin_attempt(
        &self,
        tenant_id: &str,
        due: &events::ShareDue,
        lease: &Lease,
    ) -> Result<Begun, HandlerError> {
        let now = chrono::Utc::now();
        let row = publication::ActiveModel {
            share_id: Set(due.share_id.clone()),
            tenant_id: Set(tenant_id.to_string()),
            user_id: Set(due.user_id.clone()),
            post_id: Set(due.post_id.clone()),
            account_id: Set(due.account_id.clone()),
            network: Set(due.network.clone()),
            text: Set(due.text.clone()),
            image_url: Set(Some(due.image_url.clone()).filter(|url| !url.is_empty())),
            image_alt: Set(Some(due.image_alt.clone()).filter(|alt| !alt.is_empty())),
            link_code: Set(due.link_code.clone()),
            target_url: Set(due.target_url.clone()),
            status: Set("publishing".to_string()),
            attempts: Set(1),
            in_flight: Set(true),
            external_id: Set(None),
            external_url: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            published_at: Set(None),
            lease: Set(Some(lease.token.clone())),
            lease_until: Set(Some(lease.until(now))),
            attempt_ref: Set(None),
        };
        // Every column is set: the row is known without reading it back.
        let model = row.clone().try_into_model()?;
        let inserted = publication::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.db)
            .await?;
        if matches!(inserted, TryInsertResult::Inserted(count) if count > 0) {
            return Ok(Begun::Mine(Box::new(publication::Model {
                in_flight: false,
                ..model
            })));
        }
        // A redelivery: the earlier attempt's row says whether it may have reached the
        // network, and whether a delivery is still at work on it.
        let Some(existing) = publication::Entity::find_by_id(due.share_id.clone())
            .one(&self.db)
            .await?
        else {
            return Err(HandlerError::Retry(
                "the attempt row vanished while being recorded".into(),
            ));
        };
        if existing.status != "publishing" {
            tracing::info!(share_id = %due.share_id, status = %existing.status, "share already final, duplicate delivery skipped");
            return Ok(Begun::Final);
        }
        if let (Some(_), Some(until)) = (&existing.lease, existing.lease_until)
            && until > now
        {
            return Ok(Begun::HeldElsewhere(until));
        }
        // Take the lease only from the holder it had when read (compare and set): of two
        // deliveries taking over at once, one wins.
        let previous_holder = match &existing.lease {
            Some(token) => publication::Column::Lease.eq(token.clone()),
            None => publication::Column::Lease.is_null(),
        };
        let attempts = existing.attempts + 1;
        let taken = publication::Entity::update_many()
            .col_expr(publication::Column::Lease, Expr::value(lease.token.clone()))
            .col_expr(
                publication::Column::LeaseUntil,
                Expr::value(lease.until(now)),
            )
            .col_expr(publication::Column::Attempts, Expr::value(attempts))
            .col_expr(publication::Column::InFlight, Expr::value(true))
            .col_expr(publication::Column::UpdatedAt, Expr::value(now))
            .filter(publication::Column::ShareId.eq(&due.share_id))
            .filter(publication::Column::Status.eq("publishing"))
            .filter(previous_holder)
            .exec(&self.db)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(Begun::HeldElsewhere(lease.until(now)));
        }
        Ok(Begun::Mine(Box::new(publication::Model {
            attempts,
            updated_at: now,
            lease: Some(lease.token.clone()),
            lease_until: Some(lease.until(now)),
            ..existing
        })))
    }

    /// Records a transient failure and gives the lease up, so that the retry takes it at
    /// once.
    async fn note_error(
        &self,
        record: &publication::Model,
        lease: &Lease,
        error: &NetworkError,
    ) -> Result<(), HandlerError> {
        // A definite refusal means nothing reached the network; an unknown outcome keeps
        // the attempt in flight so that the next delivery reconciles first.
        let still_in_flight = matches!(error, NetworkError::OutcomeUnknown(_));
        publication::Entity::update_many()
            .col_expr(publication::Column::InFlight, Expr::value(still_in_flight))
            .col_expr(
                publication::Column::LastError,
                Expr::value(Some(error.to_string())),
            )
            .col_expr(
                publication::Column::UpdatedAt,
                Expr::value(chrono::Utc::now()),
            )
            .col_expr(publication::Column::Lease, Expr::value(None::<String>))
            .col_expr(
                publication::Column::LeaseUntil,
                Expr::value(None::<chrono::DateTime<chrono::Utc>>),
            )
            .filter(publication::Column::ShareId.eq(&record.share_id))
            .filter(publication::Column::Lease.eq(&lease.token))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn load_account(
        &self,
        record: &publication::Model,
    ) -> Result<Option<account::Model>, HandlerError> {
        let account = account::Entity::find_by_id(record.account_id.clone())
            .one(&self.db)
            .await?;
        Ok(account.filter(|account| {
            account.tenant_id == record.tenant_id && account.user_id == record.user_id
        }))
    }

    /// One attempt: account checks, limiter, reconciliation, the call, one refresh on 401.
    async fn attempt(
        &self,
        record: &publication::Model,
        lease: &Lease,
        client: &NetworkClient,
        outside: &mut Outside,
    ) -> Result<Attempt, NetworkError> {
        let account = match self.load_account(record).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                return Ok(Attempt::Failed {
                    code: "account_missing",
                    reason: "the account was disconnected".into(),
                });
            }
            Err(error) => return Err(NetworkError::Unavailable(format!("database: {error}"))),
        };
        match account.status.as_str() {
            "connected" => {}
            "needs_reconnect" => {
                return Ok(Attempt::NeedsReconnect {
                    reason: "the account must be reconnected".into(),
                });
            }
            _ => {
                return Ok(Attempt::Failed {
                    code: "account_missing",
                    reason: "the account was disconnected".into(),
                });
            }
        }
        let mut access_token = self
            .accounts
            .access_token(&account)
            .map_err(|error| NetworkError::Unavailable(error.message))?;
        let post = PostRequest {
            author_id: account.external_id.clone(),
            text: record.text.clone(),
            link_url: tracked_link_in(&record.text, &record.link_code),
            image_url: record.image_url.clone(),
            image_alt: record.image_alt.clone(),
            idempotency_key: record.share_id.clone(),
        };

        // Networks with a quota endpoint (Instagram) say what is left before we post.
        match outside
            .timed(
                client
                    .adapter
                    .publish_budget(&access_token, &post.author_id),
            )
            .await
        {
            Ok(Some(budget)) => client.limiter.observe_budget(&account.id, &budget),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(share_id = %record.share_id, %error, "publishing quota could not be read")
            }
        }

        let mut refreshed = false;
        let mut rate_limited = 0;
        loop {
            let waited = outside
                .timed(self.wait_for_window(record, client, &account.id))
                .await;
            LIMIT_WAIT
                .with_label_values(&[&record.network])
                .observe(waited.as_secs_f64());
            // After every wait, and before anything reaches the network: is the share still
            // ours? The conditional update renews the lease for the call.
            match lease.confirm().await {
                Ok(true) => {}
                Ok(false) => {
                    lease::count("lost");
                    return Ok(Attempt::Abandoned {
                        reason: "another delivery took the publication's lease".into(),
                    });
                }
                Err(error) => {
                    return Ok(Attempt::Abandoned {
                        reason: format!("the publication's lease could not be confirmed: {error}"),
                    });
                }
            }
            let outcome = if record.in_flight {
                tracing::info!(share_id = %record.share_id, attempts = record.attempts, "previous attempt outcome unknown, reconciling");
                match outside
                    .timed(client.adapter.find_post(&access_token, &post))
                    .await
                {
                    Ok(Some(posted)) => Ok(Attempt::Published {
                        posted,
                        reconciled: true,
                        audience_size: account.audience_size.unwrap_or(0),
                    }),
                    Ok(None) => {
                        outside
                            .timed(self.call(&account, client, &access_token, &post))
                            .await
                    }
                    Err(error) => Err(error),
                }
            } else {
                outside
                    .timed(self.call(&account, client, &access_token, &post))
                    .await
            };
            match outcome {
                Err(NetworkError::Unauthorized(message)) => {
                    if !refreshed {
                        refreshed = true;
                        match outside.timed(self.accounts.refresh(&account)).await {
                            Ok(Some(token)) => {
                                access_token = token;
                                continue;
                            }
                            Ok(None) => {}
                            Err(error) => return Err(NetworkError::Unavailable(error.message)),
                        }
                    }
                    self.mark_needs_reconnect(&account).await;
                    return Ok(Attempt::NeedsReconnect { reason: message });
                }
                Err(NetworkError::Invalid(reason)) => {
                    return Ok(Attempt::Failed {
                        code: "invalid",
                        reason,
                    });
                }
                Err(NetworkError::Forbidden(reason)) => {
                    return Ok(Attempt::Failed {
                        code: "forbidden",
                        reason,
                    });
                }
                Err(NetworkError::RateLimited {
                    retry_after,
                    message,
                }) => {
                    // Wait for the window the network named (its headers, else a minute),
                    // holding the delivery, instead of collecting more refusals.
                    let wait = retry_after.unwrap_or(Duration::from_secs(60));
                    client.limiter.pause(&account.id, wait);
                    let until =
                        chrono::Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
                    self.tell_waiting(
                        record,
                        format!("{}'s rate limit", network_name(&record.network)),
                        Some(until),
                    )
                    .await;
                    RATE_LIMITED.with_label_values(&[&record.network]).inc();
                    tracing::warn!(share_id = %record.share_id, network = %record.network, wait_ms = wait.as_millis() as u64, %message, "rate limited by the network, waiting");
                    rate_limited += 1;
                    if wait > MAX_HELD_WAIT || rate_limited > 3 {
                        return Err(NetworkError::RateLimited {
                            retry_after,
                            message,
                        });
                    }
                    continue;
                }
                Err(NetworkError::Configuration(reason)) => {
                    tracing::error!(network = %record.network, %reason, "network configuration error");
                    return Ok(Attempt::Failed {
                        code: "configuration",
                        reason,
                    });
                }
                other => return other,
            }
        }
    }

    /// Waits until the account and the application may post. A wait that lasts is told to
    /// the advocate (`share.waiting`): the share shows what it waits for instead of a due
    /// time already past.
    async fn wait_for_window(
        &self,
        record: &publication::Model,
        client: &NetworkClient,
        account_id: &str,
    ) -> Duration {
        let ready = client.limiter.until_ready(account_id);
        tokio::pin!(ready);
        tokio::select! {
            waited = &mut ready => return waited,
            () = tokio::time::sleep(TELL_WAIT_AFTER) => {}
        }
        self.tell_waiting(
            record,
            format!(
                "the account's posting window on {}",
                network_name(&record.network)
            ),
            None,
        )
        .await;
        ready.await
    }

    /// Announces what a due share waits for (best effort: the wait goes on regardless).
    async fn tell_waiting(
        &self,
        record: &publication::Model,
        reason: String,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        tracing::info!(share_id = %record.share_id, network = %record.network, %reason, "share waiting");
        let event = events::ShareWaiting {
            tenant_id: record.tenant_id.clone(),
            share_id: record.share_id.clone(),
            user_id: record.user_id.clone(),
            network: record.network.clone(),
            reason,
            until: until.map(chorus_events::to_timestamp),
        };
        match self.outbox.enqueue(&self.db, &event).await {
            Ok(_) => self.outbox.wake(),
            Err(error) => {
                tracing::warn!(share_id = %record.share_id, %error, "the share's wait could not be announced")
            }
        }
    }

    async fn call(
        &self,
        account: &account::Model,
        client: &NetworkClient,
        access_token: &str,
        post: &PostRequest,
    ) -> Result<Attempt, NetworkError> {
        let posted = client.adapter.publish(access_token, post).await?;
        if let Some(budget) = &posted.budget {
            client.limiter.observe_budget(&account.id, budget);
        }
        let reconciled = posted.already_existed;
        Ok(Attempt::Published {
            posted,
            reconciled,
            audience_size: account.audience_size.unwrap_or(0),
        })
    }

    async fn mark_needs_reconnect(&self, account: &account::Model) {
        let row = account::ActiveModel {
            id: Set(account.id.clone()),
            status: Set("needs_reconnect".to_string()),
            updated_at: Set(chrono::Utc::now()),
            ..Default::default()
        };
        if let Err(error) = row.update(&self.db).await {
            tracing::error!(account_id = %account.id, %error, "account status could not be saved");
        }
    }

    /// Records the final state and its event in one transaction.
    pub(crate) async fn finish(
        &self,
        record: &publication::Model,
        lease: &Lease,
        outcome: Attempt,
    ) -> Result<(), HandlerError> {
        let now = chrono::Utc::now();
        let txn = self.db.begin().await?;
        let mut row = publication::ActiveModel {
            share_id: Set(record.share_id.clone()),
            in_flight: Set(false),
            updated_at: Set(now),
            lease_until: Set(None),
            ..Default::default()
        };
        let label;
        match outcome {
            Attempt::Published {
                posted,
                reconciled,
                audience_size,
            } => {
                label = if reconciled {
                    "reconciled"
                } else {
                    "published"
                };
                row.status = Set("published".to_string());
                row.external_id = Set(Some(posted.external_id.clone()));
                row.external_url = Set(Some(posted.url.clone()));
                row.published_at = Set(Some(now));
                record_outcome(&txn, row, lease).await?;
                let event = events::SharePublished {
                    tenant_id: record.tenant_id.clone(),
                    share_id: record.share_id.clone(),
                    user_id: record.user_id.clone(),
                    post_id: record.post_id.clone(),
                    account_id: record.account_id.clone(),
                    network: record.network.clone(),
                    external_id: posted.external_id.clone(),
                    external_url: posted.url.clone(),
                    published_at: Some(chorus_events::to_timestamp(now)),
                    attempts: record.attempts as u32,
                    link_code: record.link_code.clone(),
                    target_url: record.target_url.clone(),
                    reconciled,
                    audience_size,
                };
                self.outbox
                    .enqueue_with_id(&txn, &event, format!("share-published-{}", record.share_id))
                    .await?;
                tracing::info!(share_id = %record.share_id, network = %record.network, external_id = %posted.external_id, reconciled, "share published");
            }
            Attempt::Failed { code, reason } => {
                label = "failed";
                row.status = Set("failed".to_string());
                row.last_error = Set(Some(reason.clone()));
                record_outcome(&txn, row, lease).await?;
                let event = events::ShareFailed {
                    tenant_id: record.tenant_id.clone(),
                    share_id: record.share_id.clone(),
                    user_id: record.user_id.clone(),
                    network: record.network.clone(),
                    error_code: code.to_string(),
                    reason: reason.clone(),
                    attempts: record.attempts as u32,
                    failed_at: Some(chorus_events::to_timestamp(now)),
                };
                self.outbox
                    .enqueue_with_id(&txn, &event, format!("share-failed-{}", record.share_id))
                    .await?;
                tracing::warn!(share_id = %record.share_id, network = %record.network, code, %reason, "share failed");
            }
            Attempt::NeedsReconnect { reason } => {
                label = "needs_reconnect";
                row.status = Set("needs_reconnect".to_string());
                row.last_error = Set(Some(reason.clone()));
                record_outcome(&txn, row, lease).await?;
                let event = events::ShareNeedsReconnect {
                    tenant_id: record.tenant_id.clone(),
                    share_id: record.share_id.clone(),
                    user_id: record.user_id.clone(),
                    account_id: record.account_id.clone(),
                    network: record.network.clone(),
                    reason: reason.clone(),
                };
                self.outbox
                    .enqueue_with_id(
                        &txn,
                        &event,
                        format!("share-needs-reconnect-{}", record.share_id),
                    )
                    .await?;
                tracing::warn!(share_id = %record.share_id, network = %record.network, %reason, "account needs reconnecting");
            }
            Attempt::Unconfirmed { reason } => {
                label = "unconfirmed";
                row.status = Set("unconfirmed".to_string());
                row.last_error = Set(Some(reason.clone()));
                // Still possibly at the network: the next resolution reconciles first.
                row.in_flight = Set(true);
                record_outcome(&txn, row, lease).await?;
                let event = events::ShareUnconfirmed {
                    tenant_id: record.tenant_id.clone(),
                    share_id: record.share_id.clone(),
                    user_id: record.user_id.clone(),
                    account_id: record.account_id.clone(),
                    network: record.network.clone(),
                    reason: reason.clone(),
                    attempts: record.attempts as u32,
                    unconfirmed_at: Some(chorus_events::to_timestamp(now)),
                };
                self.outbox
                    .enqueue_with_id(
                        &txn,
                        &event,
                        format!("share-unconfirmed-{}-{}", record.share_id, record.attempts),
                    )
                    .await?;
                tracing::error!(share_id = %record.share_id, network = %record.network, %reason, "share unconfirmed: the post may exist, an administrator must resolve it");
            }
            Attempt::Abandoned { reason } => {
                return Err(HandlerError::Retry(reason));
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        tracing::Span::current().record("outcome", label);
        OUTCOMES.with_label_values(&[&record.network, label]).inc();
        Ok(())
    }
}

/// Writes a final state, only while the lease is this delivery's and the share still being
/// published; otherwise nothing is written (the transaction is dropped, so its events too).
async fn record_outcome(
    txn: &sea_orm::DatabaseTransaction,
    row: publication::ActiveModel,
    lease: &Lease,
) -> Result<(), HandlerError> {
    let written = publication::Entity::update_many()
        .set(row)
        .filter(publication::Column::ShareId.eq(&lease.share_id))
        .filter(publication::Column::Status.eq("publishing"))
        .filter(publication::Column::Lease.eq(&lease.token))
        .exec(txn)
        .await?;
    if written.rows_affected != 1 {
        lease::count("lost");
        return Err(HandlerError::Retry(
            "the publication's lease was lost before its outcome was recorded".into(),
        ));
    }
    Ok(())
}

/// Time an attempt spent waiting outside the publisher: the network's answers, the limiters,
/// the due time. The rest of the attempt is the publisher's own overhead.
#[derive(Default)]
struct Outside(Duration);

impl Outside {
    async fn timed<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let output = work.await;
        self.0 += started.elapsed();
        output
    }
}

/// The tracked link as it appears in the text (`…/l/<code>`).
fn tracked_link_in(text: &str, link_code: &str) -> Option<String> {
    let suffix = format!("/l/{link_code}");
    text.split_whitespace()
        .find(|word| word.starts_with("http") && word.ends_with(&suffix))
        .map(str::to_string)
}

/// Attempt references (Instagram's containers) kept with their publication, keyed by share.
pub struct PublicationRefs {
    pub db: DatabaseConnection,
}

#[async_trait::async_trait]
impl chorus_social::AttemptRefs for PublicationRefs {
    async fn get(&self, share_id: &str) -> Option<String> {
        match publication::Entity::find_by_id(share_id.to_string())
            .one(&self.db)
            .await
        {
            Ok(row) => row.and_then(|row| row.attempt_ref),
            Err(error) => {
                tracing::warn!(share_id, %error, "attempt reference could not be read");
                None
            }
        }
    }

    async fn put(&self, share_id: &str, reference: &str) -> Result<(), NetworkError> {
        publication::Entity::update_many()
            .col_expr(
                publication::Column::AttemptRef,
                Expr::value(Some(reference.to_string())),
            )
            .filter(publication::Column::ShareId.eq(share_id))
            .exec(&self.db)
            .await
            .map_err(|error| {
                NetworkError::Unavailable(format!(
                    "the attempt's reference could not be recorded: {error}"
                ))
            })?;
        Ok(())
    }

    async fn forget(&self, share_id: &str) {
        let forgotten = publication::Entity::update_many()
            .col_expr(publication::Column::AttemptRef, Expr::value(None::<String>))
            .filter(publication::Column::ShareId.eq(share_id))
            .exec(&self.db)
            .await;
        if let Err(error) = forgotten {
            tracing::warn!(share_id, %error, "attempt reference could not be forgotten");
        }
    }
}
