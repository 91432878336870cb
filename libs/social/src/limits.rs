//! Rate-limit policies: per (network, account) and per (network, application) windows of
//! posts kept as sliding logs, and a governor limiter of metrics reads, with quotas from
//! configuration.

use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::{HashMap, VecDeque};
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

/// Time added to every publishing window: the network starts its window when the first
/// post reaches it, a little after this side counted it, and later posts may travel faster.
pub const WINDOW_MARGIN: Duration = Duration::from_millis(250);

/// The limiters of one network's publisher.
#[derive(Clone)]
pub struct PublishLimiter {
    per_account_day: Arc<SlidingLog>,
    per_account_window: Option<Arc<SlidingLog>>,
    per_app_day: Arc<SlidingLog>,
    /// Accounts the network told to wait (remaining budget 0) until an instant.
    paused: Arc<std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>>,
    /// One post at a time per account: each learns the budget the previous one left.
    turns: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

const DAY: Duration = Duration::from_secs(86_400);

impl PublishLimiter {
    pub fn new(quotas: NetworkQuotas) -> PublishLimiter {
        PublishLimiter {
            per_account_day: Arc::new(SlidingLog::new(quotas.per_account_per_day, DAY)),
            per_account_window: quotas
                .per_account_window
                .map(|(amount, window)| Arc::new(SlidingLog::new(amount, window))),
            per_app_day: Arc::new(SlidingLog::new(quotas.per_app_per_day, DAY)),
            paused: Arc::default(),
            turns: Arc::default(),
        }
    }

    /// The account's turn to post: held for a whole attempt, so that shares of one account
    /// go one after the other and each sees the rate headers of the one before (several at
    /// once would all pass the limiter before the first answer told how much was left).
    pub async fn turn(&self, account_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut turns = self.turns.lock().expect("turn table");
            if turns.len() > 100_000 {
                // Forget the accounts nobody is waiting for.
                turns.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            turns.entry(account_id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Waits until both the account and the application may post, and counts the post;
    /// returns the time waited.
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
        self.per_account_day.until_ready(account_id).await;
        if let Some(window) = &self.per_account_window {
            window.until_ready(account_id).await;
        }
        self.per_app_day.until_ready("").await;
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
        let latest = tokio::time::Instant::now() + wait;
        let mut until = latest;
        // A reset known to the second: when this account's own window log is full and frees
        // a post within that second, the log knows the window's start better (it counted
        // the posts the network counted), so the account need not wait out the whole second.
        // A log that frees earlier describes another window than the network's: the reset
        // stands.
        if !budget.reset_precision.is_zero()
            && let Some(free) = self
                .per_account_window
                .as_ref()
                .and_then(|window| window.full_until(account_id))
            && free < latest
            && free + budget.reset_precision >= latest
        {
            until = free;
        }
        paused.insert(account_id.to_string(), until);
    }

    /// The network refused for a limit and said (or its headers said) how long to wait.
    pub fn pause(&self, account_id: &str, wait: Duration) {
        self.paused
            .lock()
            .expect("pause table")
            .insert(account_id.to_string(), tokio::time::Instant::now() + wait);
    }
}

/// At most `amount` posts in any span of `window` (plus `WINDOW_MARGIN`) per key: the
/// instants of the posts of the last span, oldest first. A token bucket refills during the
/// window, so a burst at the end of one of the network's windows met a burst at the start
/// of the next and collected 429s; a log never exceeds a fixed or a sliding window of the
/// network, whatever its phase, and still lets the whole amount go at once.
#[derive(Debug)]
pub struct SlidingLog {
    amount: usize,
    span: Duration,
    posts: std::sync::Mutex<HashMap<String, VecDeque<tokio::time::Instant>>>,
}

impl SlidingLog {
    pub fn new(amount: u32, window: Duration) -> SlidingLog {
        SlidingLog {
            amount: amount.max(1) as usize,
            span: window + WINDOW_MARGIN,
            posts: std::sync::Mutex::default(),
        }
    }

    /// Counts a post for `key` now, or says how long to wait before one may be counted.
    pub fn try_take(&self, key: &str) -> Result<(), Duration> {
        let now = tokio::time::Instant::now();
        let mut posts = self.posts.lock().expect("sliding log");
        let log = match posts.get_mut(key) {
            Some(log) => log,
            None => posts.entry(key.to_string()).or_default(),
        };
        while log
            .front()
            .is_some_and(|oldest| now.duration_since(*oldest) >= self.span)
        {
            log.pop_front();
        }
        if log.len() < self.amount {
            log.push_back(now);
            return Ok(());
        }
        let oldest = *log.front().expect("a full log");
        Err((oldest + self.span).saturating_duration_since(now))
    }

    /// When the log of `key` is full: the instant its oldest post leaves the span.
    pub fn full_until(&self, key: &str) -> Option<tokio::time::Instant> {
        let posts = self.posts.lock().expect("sliding log");
        let log = posts.get(key)?;
        let now = tokio::time::Instant::now();
        let live = log
            .iter()
            .filter(|post| now.duration_since(**post) < self.span)
            .count();
        (live >= self.amount)
            .then(|| {
                log.iter()
                    .rev()
                    .nth(self.amount - 1)
                    .map(|oldest| *oldest + self.span)
            })
            .flatten()
    }

    /// Waits until a post may be counted for `key`, and counts it.
    pub async fn until_ready(&self, key: &str) {
        while let Err(wait) = self.try_take(key) {
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_window_waits_for_its_oldest_post_plus_the_margin() {
        let log = SlidingLog::new(3, Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(log.try_take("a"), Ok(()));
        }
        assert_eq!(
            log.try_take("a"),
            Err(Duration::from_secs(10) + WINDOW_MARGIN)
        );
        // Another account has its own window.
        assert_eq!(log.try_take("b"), Ok(()));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(
            log.try_take("a"),
            Err(Duration::from_secs(6) + WINDOW_MARGIN)
        );
        let started = tokio::time::Instant::now();
        log.until_ready("a").await;
        assert_eq!(started.elapsed(), Duration::from_secs(6) + WINDOW_MARGIN);
    }

    /// A reset in whole seconds (X): the account waits for its own full log when that frees
    /// a post within the reset's last second, for the whole second otherwise.
    #[tokio::test(start_paused = true)]
    async fn a_reset_known_to_the_second_is_narrowed_by_a_full_log() {
        let limiter = PublishLimiter::new(NetworkQuotas {
            per_account_per_day: 1_000,
            per_app_per_day: 10_000,
            per_account_window: Some((3, Duration::from_secs(10))),
        });
        for _ in 0..3 {
            limiter.until_ready("a").await;
        }
        // The network: nothing left, reset between 9.6 s and 10.6 s from now.
        let budget = |after: Duration| crate::RateBudget {
            limit: 3,
            remaining: 0,
            resets_at: chrono::Utc::now() + chrono::TimeDelta::from_std(after).unwrap(),
            reset_precision: Duration::from_secs(1),
        };
        limiter.observe_budget("a", &budget(Duration::from_millis(10_600)));
        let started = tokio::time::Instant::now();
        limiter.until_ready("a").await;
        assert_eq!(started.elapsed(), Duration::from_secs(10) + WINDOW_MARGIN);

        // A log that is not full knows nothing of the network's window: the whole second.
        limiter.observe_budget("b", &budget(Duration::from_millis(3_600)));
        let started = tokio::time::Instant::now();
        limiter.until_ready("b").await;
        let waited = started.elapsed();
        assert!(
            waited > Duration::from_millis(3_500) && waited <= Duration::from_millis(3_600),
            "{waited:?}"
        );

        // A full log freeing a post long before the reset describes another window.
        for _ in 0..2 {
            limiter.until_ready("c").await;
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        limiter.until_ready("c").await;
        limiter.observe_budget("c", &budget(Duration::from_secs(12)));
        let started = tokio::time::Instant::now();
        limiter.until_ready("c").await;
        let waited = started.elapsed();
        assert!(waited > Duration::from_millis(11_900), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_span_of_the_window_holds_more_than_the_amount() {
        // Posts as fast as the limiter lets them go, over several windows.
        let limiter = PublishLimiter::new(NetworkQuotas {
            per_account_per_day: 1_000,
            per_app_per_day: 10_000,
            per_account_window: Some((5, Duration::from_secs(10))),
        });
        let started = tokio::time::Instant::now();
        let mut posted = Vec::new();
        for _ in 0..20 {
            limiter.until_ready("a").await;
            posted.push(started.elapsed());
        }
        for (index, at) in posted.iter().enumerate() {
            let within = posted[index..]
                .iter()
                .take_while(|later| **later - *at < Duration::from_secs(10))
                .count();
            assert!(within <= 5, "{within} posts within 10 s of {at:?}");
        }
        // Each window's whole amount goes at its start: 20 posts in 4 bursts.
        assert_eq!(
            *posted.last().expect("posts"),
            (Duration::from_secs(10) + WINDOW_MARGIN) * 3
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_quota_of_the_application_spans_accounts() {
        let limiter = PublishLimiter::new(NetworkQuotas {
            per_account_per_day: 100,
            per_app_per_day: 2,
            per_account_window: None,
        });
        limiter.until_ready("a").await;
        limiter.until_ready("b").await;
        assert_eq!(limiter.per_app_day.try_take(""), Err(DAY + WINDOW_MARGIN));
    }
}
