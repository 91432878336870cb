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

#[tokio::test]
async fn a_failing_batch_is_applied_message_by_message() {
    spans();
    let dir = tempfile::tempdir().unwrap();
    let nats = chorus::nats::NatsServer::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let bus = chorus_bus::Bus::connect(&nats.url()).await.unwrap();
    bus.ensure_streams(1).await.unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    let db = chorus_kit::db::connect_and_migrate::<chorus_engagement::migration::Migrator>(&url)
        .await
        .unwrap();

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
    bus.ensure_streams(1).await.unwrap();
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
