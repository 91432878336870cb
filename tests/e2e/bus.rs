//! Batch consumers: the messages that are ready are applied together; a batch that fails is
//! split so that only its bad message is retried and kept as a dead letter; a payload that
//! does not decode is terminated and kept too. Nothing is applied twice or lost.

use crate::harness::{nats_server_bin, postgres_admin_url, spans};
use chorus_bus::consumer::{self, ConsumerSpec, HandlerError};
use chorus_events::engagement::v1::LinkClicked;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A private nats-server with Chorus's streams, and a fresh SQLite database with the bus's
/// tables (engagement's migrations), in a folder that lives as long as the first value.
async fn bus_and_database() -> (
    tempfile::TempDir,
    chorus::nats::NatsServer,
    chorus_bus::Bus,
    sea_orm::DatabaseConnection,
) {
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let bus = chorus_bus::Bus::connect(&nats.url()).await.unwrap();
    bus.ensure_streams(&chorus_bus::StreamSettings::single())
        .await
        .unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    let db = chorus_kit::db::connect_and_migrate::<chorus_engagement::migration::Migrator>(&url)
        .await
        .unwrap();
    (dir, nats, bus, db)
}

#[tokio::test]
async fn a_failing_batch_is_applied_message_by_message() {
    spans();
    let (_dir, _nats, bus, db) = bus_and_database().await;

    // 60 clicks already waiting (so that they come in batches), one of which the handler
    // cannot apply, and one payload that is not a click at all.
    for index in 0..60 {
        let code = if index == 17 {
            "bad".to_string()
        } else {
            format!("c{index}")
        };
        let click = LinkClicked {
            tenant_id: "t1".into(),
            link_code: code,
            ..Default::default()
        };
        bus.publish_event(&click, "test").await.unwrap();
    }
    bus.jetstream
        .publish(
            "chorus.t1.engagement.link_clicked.v1",
            vec![0xff, 0x01, 0x02].into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let applied: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let shutdown = chorus_kit::Shutdown::new();
    let mut spec = ConsumerSpec::new("test", "test-batch");
    spec.max_deliver = 2;
    spec.retry_delays = vec![Duration::from_millis(50)];
    {
        let applied = applied.clone();
        let batches = batches.clone();
        consumer::spawn_batch::<LinkClicked, _, _>(
            &bus,
            db.clone(),
            spec,
            25,
            shutdown.clone(),
            move |deliveries| {
                let applied = applied.clone();
                let batches = batches.clone();
                async move {
                    batches.lock().unwrap().push(deliveries.len());
                    // All or nothing, like a transaction.
                    if deliveries.iter().any(|d| d.event.link_code == "bad") {
                        return Err(HandlerError::Reject("no such link".into()));
                    }
                    let mut applied = applied.lock().unwrap();
                    for delivery in deliveries {
                        assert_eq!(delivery.tenant_id, "t1");
                        *applied.entry(delivery.event.link_code).or_default() += 1;
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let letters = consumer::dead_letters(&db).await.unwrap();
        if applied.lock().unwrap().len() == 59 && letters.len() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "applied {} of 59, {} dead letters",
            applied.lock().unwrap().len(),
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give redeliveries a chance to show up, then check nothing was applied twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let applied = applied.lock().unwrap().clone();
    assert!(!applied.contains_key("bad"));
    assert!(applied.values().all(|count| *count == 1), "{applied:?}");
    let batches = batches.lock().unwrap().clone();
    assert!(
        batches.iter().any(|size| *size > 1),
        "messages were never applied together: {batches:?}"
    );
    assert!(batches.iter().all(|size| *size <= 25), "{batches:?}");
    let letters = consumer::dead_letters(&db).await.unwrap();
    let reasons: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("no such link")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not decode")),
        "{reasons:?}"
    );
    shutdown.cancel();
}

/// Two replicas of a service relay one outbox on PostgreSQL: each row is published by
/// exactly one of them (rows are taken with `FOR UPDATE SKIP LOCKED`), and every row ends sent.
#[tokio::test]
async fn replicas_share_one_outbox_without_publishing_a_row_twice() {
    spans();
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let bus = chorus_bus::Bus::connect(&nats.url()).await.unwrap();
    bus.ensure_streams(&chorus_bus::StreamSettings::single())
        .await
        .unwrap();
    let admin_url = postgres_admin_url();
    let admin = chorus_kit::db::connect(&admin_url)
        .await
        .expect("PostgreSQL must be reachable");
    let name = format!(
        "chorus_t{}_outbox",
        uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap()
    );
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let db = chorus_kit::db::connect_and_migrate::<chorus_engagement::migration::Migrator>(&url)
        .await
        .unwrap();

    let outbox = chorus_bus::Outbox::new("engagement");
    let total = 1_000;
    for index in 0..total {
        let click = LinkClicked {
            tenant_id: "t1".into(),
            link_code: format!("c{index}"),
            ..Default::default()
        };
        outbox.enqueue(&db, &click).await.unwrap();
    }
    let first = outbox.relay(db.clone(), bus.clone());
    let second = outbox.relay(db.clone(), bus.clone());
    let (a, b) = tokio::join!(first.relay_pending(), second.relay_pending());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a + b,
        total,
        "published by the first {a}, by the second {b}"
    );
    let unsent = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM chorus_outbox WHERE sent_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(unsent, 0);
    let mut stream = bus.jetstream.get_stream("CHORUS_ENGAGEMENT").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, total as u64);

    drop(db);
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

/// A request handler that panics answers at once with an internal error (it used to leave
/// the caller waiting for its timeout), and the endpoint keeps answering afterwards.
#[tokio::test]
async fn a_panicking_handler_answers_an_internal_error_at_once() {
    spans();
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let shutdown = chorus_kit::Shutdown::new();
    let server = chorus_bus::rpc::RpcServer::start(&client, "probe", shutdown.clone())
        .await
        .unwrap();
    server
        .endpoint("divide", |_caller, by: u64| async move {
            if by == 0 {
                panic!("attempt to divide by zero");
            }
            Ok(100 / by)
        })
        .await
        .unwrap();
    let caller = chorus_kit::Caller {
        tenant_id: "acme".into(),
        user_id: "alice".into(),
        roles: vec![chorus_kit::Role::Advocate],
    };
    let subject = chorus_bus::rpc::subject("probe", "divide");
    let started = std::time::Instant::now();
    let error =
        chorus_bus::rpc::call::<u64, u64>(&client, &subject, &caller, &0, Duration::from_secs(10))
            .await
            .unwrap_err();
    assert_eq!(error.code, chorus_kit::ErrorCode::Internal, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at once, not at the timeout"
    );
    let answer: u64 =
        chorus_bus::rpc::call(&client, &subject, &caller, &4, Duration::from_secs(10))
            .await
            .unwrap();
    assert_eq!(answer, 25);
    shutdown.cancel();
}

/// The embedded nats-server syncs every acknowledged write to disk (JetStream's default
/// syncs every two minutes and loses acknowledged writes when the machine fails).
#[tokio::test]
async fn the_embedded_nats_server_syncs_every_write_before_acknowledging_it() {
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let varz: serde_json::Value = reqwest::get(format!("{}/varz", nats.monitor_url().unwrap()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        varz["jetstream"]["config"]["sync_always"], true,
        "{}",
        varz["jetstream"]
    );
}

/// Streams and buckets an operator changed keep their settings when Chorus starts again
/// (they used to be created or updated at every start: a bucket's replicas and limits went
/// back to Chorus's).
#[tokio::test]
async fn a_start_never_resets_what_an_operator_changed_on_streams_and_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let bus = chorus_bus::Bus::connect(&nats.url()).await.unwrap();
    let settings = chorus_bus::StreamSettings {
        replicas: 1,
        max_bytes: 64 * 1024 * 1024,
        max_age: Duration::from_secs(7 * 86_400),
    };
    bus.ensure_streams(&settings).await.unwrap();
    let mut share = bus.jetstream.get_stream("CHORUS_SHARE").await.unwrap();
    let created = share.info().await.unwrap().config.clone();
    assert_eq!(created.max_bytes, 64 * 1024 * 1024);
    assert_eq!(created.max_age, Duration::from_secs(7 * 86_400));
    // The operator gives the share stream and the idempotency bucket more room.
    bus.jetstream
        .update_stream(async_nats::jetstream::stream::Config {
            max_bytes: 256 * 1024 * 1024,
            ..created
        })
        .await
        .unwrap();
    let mut bucket = bus
        .jetstream
        .get_stream("KV_chorus_idempotency")
        .await
        .unwrap();
    let bucket_config = bucket.info().await.unwrap().config.clone();
    bus.jetstream
        .update_stream(async_nats::jetstream::stream::Config {
            max_age: Duration::from_secs(2 * 86_400),
            ..bucket_config
        })
        .await
        .unwrap();

    bus.ensure_streams(&settings).await.unwrap();
    let share_after = share.info().await.unwrap().config.clone();
    assert_eq!(share_after.max_bytes, 256 * 1024 * 1024);
    let bucket_after = bucket.info().await.unwrap().config.clone();
    assert_eq!(bucket_after.max_age, Duration::from_secs(2 * 86_400));
}

use chorus::nats::process_running as process_alive;

/// `kill -9` of the all-in-one process takes its nats-server with it, and a start finds a
/// server that outlived its parent on the same store and stops it before starting its own.
#[tokio::test]
async fn the_embedded_nats_server_dies_with_its_parent_and_a_start_takes_over_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut chorus = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--target", "netsim"])
        .env("CHORUS_NATS_SERVER_BIN", nats_server_bin())
        .env("CHORUS_DATA_DIR", dir.path())
        .env("CHORUS_NETSIM__LISTEN", "127.0.0.1:0")
        .env("CHORUS_ADMIN_LISTEN", "127.0.0.1:0")
        .env("CHORUS_LOG", "warn")
        .env_remove("CHORUS_NATS_URL")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("nats").join("chorus-nats.pid");
    let mut child_pid = None;
    for _ in 0..200 {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            child_pid = Some(pid);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let child_pid = child_pid.expect("the embedded nats-server started");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(process_alive(child_pid));
    chorus.kill().await.unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if !process_alive(child_pid) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "nats-server {child_pid} outlived its parent");

    // A server left running on the store (its owner never stopped it): the next start stops
    // it and serves the same store alone.
    let store = dir.path().join("nats");
    let first = chorus::nats::NatsServer::start(&nats_server_bin(), &store)
        .await
        .unwrap();
    let left_behind = first.pid().unwrap();
    std::mem::forget(first);
    let second = chorus::nats::NatsServer::start(&nats_server_bin(), &store)
        .await
        .unwrap();
    assert!(
        !process_alive(left_behind),
        "the earlier server was stopped"
    );
    let bus = chorus_bus::Bus::connect(&second.url()).await.unwrap();
    bus.ensure_streams(&chorus_bus::StreamSettings::single())
        .await
        .unwrap();
}

/// A consumer takes from JetStream no more messages than its handlers can start: messages
/// that wait for a free handler wait on the server, where `ack_wait` does not run, so none is
/// delivered twice while its first delivery waits (they used to wait in the client's buffer
/// past `ack_wait` and come back as second deliveries of messages still unhandled).
#[tokio::test]
async fn messages_waiting_for_a_handler_are_not_redelivered_meanwhile() {
    spans();
    let (_dir, _nats, bus, db) = bus_and_database().await;
    for index in 0..8 {
        let click = LinkClicked {
            tenant_id: "t1".into(),
            link_code: format!("slow{index}"),
            ..Default::default()
        };
        bus.publish_event(&click, "test").await.unwrap();
    }
    // Two handlers at a time, 700 ms each, `ack_wait` of 1 s: the last messages wait about
    // 2.8 s for a handler.
    let mut spec = ConsumerSpec::new("test", "test-slow").concurrency(2);
    spec.ack_wait = Duration::from_secs(1);
    let handled: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let shutdown = chorus_kit::Shutdown::new();
    {
        let handled = handled.clone();
        consumer::spawn::<LinkClicked, _, _>(&bus, db, spec, shutdown.clone(), move |delivery| {
            let handled = handled.clone();
            async move {
                handled
                    .lock()
                    .unwrap()
                    .push((delivery.event.link_code.clone(), delivery.delivered));
                tokio::time::sleep(Duration::from_millis(700)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while handled.lock().unwrap().len() < 8 {
        assert!(tokio::time::Instant::now() < deadline, "{handled:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 8, "each message handled once: {handled:?}");
    assert!(
        handled.iter().all(|(_, delivered)| *delivered == 1),
        "first deliveries only: {handled:?}"
    );
}

/// An outbox row that JetStream refuses (here: a subject no stream takes) waits with its own
/// back-off while the rows behind it go out, and after repeated refusals is set aside as dead
/// instead of being published again every round. (It used to stop the relay at that row: the
/// rows behind it were never marked sent and were published again every few seconds.)
#[tokio::test]
async fn a_refused_outbox_row_neither_blocks_the_rows_behind_it_nor_comes_back_forever() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let (_dir, _nats, bus, db) = bus_and_database().await;
    let outbox = chorus_bus::Outbox::new("engagement");
    let click = |index: usize| LinkClicked {
        tenant_id: "t1".into(),
        link_code: format!("c{index}"),
        ..Default::default()
    };
    for index in 0..5 {
        outbox.enqueue(&db, &click(index)).await.unwrap();
    }
    let mut poison = outbox.row(&click(99), "poison".into());
    poison.subject = Set("chorus.t1.nowhere.thing.v1".into());
    outbox.enqueue_rows(&db, vec![poison]).await.unwrap();
    for index in 5..10 {
        outbox.enqueue(&db, &click(index)).await.unwrap();
    }
    let relay = outbox.relay(db.clone(), bus.clone());
    let sent = relay
        .relay_pending()
        .await
        .expect("the round goes on past the refused row");
    assert_eq!(sent, 10);
    let mut stream = bus.jetstream.get_stream("CHORUS_ENGAGEMENT").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 10);
    let row = |db: sea_orm::DatabaseConnection| async move {
        chorus_bus::entities::outbox::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .find(|row| row.event_id == "poison")
            .unwrap()
    };
    let refused = row(db.clone()).await;
    assert_eq!(refused.attempts, 1);
    assert!(
        refused
            .next_attempt_at
            .is_some_and(|at| at > chrono::Utc::now())
    );
    assert!(refused.sent_at.is_none() && refused.dead_at.is_none());
    // Waiting for its back-off, it is not published again.
    assert_eq!(relay.relay_pending().await.unwrap(), 0);

    // Its last chance, with another row: set aside, the other sent.
    chorus_bus::entities::outbox::Entity::update(chorus_bus::entities::outbox::ActiveModel {
        id: Set(refused.id),
        attempts: Set(chorus_bus::outbox::POISON_AFTER - 1),
        next_attempt_at: Set(Some(chrono::Utc::now() - chrono::Duration::seconds(1))),
        ..Default::default()
    })
    .exec(&db)
    .await
    .unwrap();
    outbox.enqueue(&db, &click(10)).await.unwrap();
    assert_eq!(relay.relay_pending().await.unwrap(), 1);
    let dead = row(db.clone()).await;
    assert!(dead.dead_at.is_some(), "{dead:?}");
    assert!(dead.last_error.is_some());
    assert_eq!(stream.info().await.unwrap().state.messages, 11);
}
