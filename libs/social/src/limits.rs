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
    /// A shorter per-account window, `(posts, window)` (X: 100 per 15 min).
    pub per_account_window: Option<(u32, Duration)>,
}

/// The limiters of one network's publisher.
#[derive(Clone)]
pub struct PublishLimiter {
    per_account: Arc<RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>>,
    per_account_window: Option<Arc<KeyedLimiter>>,
    per_app: Arc<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    /// Accounts the network told to wait (remaining budget 0) until an instant.
    paused: Arc<std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>>,
}

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

fn daily_quota(per_day: u32) -> Quota {
    window_quota(per_day, Duration::from_secs(86_400))
}

/// `amount` per `window`, spread evenly, with the whole amount available as a burst.
fn window_quota(amount: u32, window: Duration) -> Quota {
    let amount = NonZeroU32::new(amount.max(1)).expect("at least one");
    let period = window / amount.get();
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("non-zero period")
        .allow_burst(amount)
}

impl PublishLimiter {
    pub fn new(quotas: NetworkQuotas) -> PublishLimiter {
        PublishLimiter {
            per_account: Arc::new(RateLimiter::keyed(daily_quota(quotas.per_account_per_day))),
            per_account_window: quotas
                .per_account_window
                .map(|(amount, window)| Arc::new(RateLimiter::keyed(window_quota(amount, window)))),
            per_app: Arc::new(RateLimiter::direct(daily_quota(quotas.per_app_per_day))),
            paused: Arc::default(),
        }
    }

    /// Waits until both the account and the application may post; returns the time waited.
    pub async fn until_ready(&self, account_id: &str) -> Duration {
        let started = std::time::Instant::now();
        let paused_until = {
            let mut paused = self.paused.lock().expect("pause table");
            match paused.get(account_id).copied() {
                // A pause that is over is dropped, so the table holds only waiting accounts.
                Some(until) if until <= tokio::time::Instant::now() => {
                    paused.remove(account_id);
                    None
                }
                other => other,
            }
        };
        if let Some(until) = paused_until {
            tokio::time::sleep_until(until).await;
        }
        let key = account_id.to_string();
        self.per_account.until_key_ready(&key).await;
        if let Some(window) = &self.per_account_window {
            window.until_key_ready(&key).await;
        }
        self.per_app.until_ready().await;
        started.elapsed()
    }

    /// Adapts to what the network reported: with nothing left in its window, the account
    /// waits until the window resets instead of collecting refusals.
    pub fn observe_budget(&self, account_id: &str, budget: &crate::RateBudget) {
        let mut paused = self.paused.lock().expect("pause table");
        if budget.remaining > 0 {
            paused.remove(account_id);
            return;
        }
        let wait = (budget.resets_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        paused.insert(account_id.to_string(), tokio::time::Instant::now() + wait);
    }

    /// The network refused for a limit and said (or its headers said) how long to wait.
    pub fn pause(&self, account_id: &str, wait: Duration) {
        self.paused
            .lock()
            .expect("pause table")
            .insert(account_id.to_string(), tokio::time::Instant::now() + wait);
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
