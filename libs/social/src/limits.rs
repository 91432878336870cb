//! Rate-limit policies: a keyed governor limiter per (network, account) and one per
//! (network, application), with quotas from configuration.

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Quotas of one network.
#[derive(Debug, Clone, Copy)]
pub struct NetworkQuotas {
    pub per_account_per_day: u32,
    pub per_app_per_day: u32,
}

/// The limiters of one network's publisher.
#[derive(Clone)]
pub struct PublishLimiter {
    per_account: Arc<RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>>,
    per_app: Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
}

fn daily_quota(per_day: u32) -> Quota {
    let per_day = NonZeroU32::new(per_day.max(1)).expect("at least one");
    // Spread evenly over the day, with the whole daily amount available as a burst.
    let period = Duration::from_secs(86_400) / per_day.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("non-zero period")
        .allow_burst(per_day)
}

impl PublishLimiter {
    pub fn new(quotas: NetworkQuotas) -> PublishLimiter {
        PublishLimiter {
            per_account: Arc::new(RateLimiter::keyed(daily_quota(quotas.per_account_per_day))),
            per_app: Arc::new(RateLimiter::direct(daily_quota(quotas.per_app_per_day))),
        }
    }

    /// Waits until both the account and the application may post; returns the time waited.
    pub async fn until_ready(&self, account_id: &str) -> Duration {
        let started = std::time::Instant::now();
        self.per_account
            .until_key_ready(&account_id.to_string())
            .await;
        self.per_app.until_ready().await;
        started.elapsed()
    }
}

/// The read budget of one network (metrics polls), kept apart from publishing so that
/// polling never delays a post.
#[derive(Clone)]
pub struct ReadLimiter {
    per_app: Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
}

impl ReadLimiter {
    pub fn per_minute(reads_per_minute: u32) -> ReadLimiter {
        let per_minute = NonZeroU32::new(reads_per_minute.max(1)).expect("at least one");
        ReadLimiter {
            per_app: Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
        }
    }

    /// Waits for a read slot; returns the time waited.
    pub async fn until_ready(&self) -> Duration {
        let started = std::time::Instant::now();
        self.per_app.until_ready().await;
        started.elapsed()
    }
}
