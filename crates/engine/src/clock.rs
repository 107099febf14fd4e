//! Injected time: the engine reads "now" and waits only through a [`Clock`], so tests can run
//! a 2-hour retry schedule in milliseconds (RECIPES "time in tests").

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A boxed, sendable future of nothing (what a sleep returns).
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the engine gets the time and how it waits.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;
    /// Wait for `d` (backoff, Retry-After, worker idle).
    fn sleep(&self, d: Duration) -> Sleep;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock for tests: time moves only when told to, and every sleep returns at once after
/// moving time forward by what was asked and recording it.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
            sleeps: Mutex::new(Vec::new()),
        }
    }
    /// Move time forward.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += chrono::Duration::from_std(d).expect("duration in range");
    }
    /// Jump to `t` (forward or back).
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().expect("clock lock") = t;
    }
    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().expect("clock lock").clone()
    }
    /// Return and forget the sleeps requested so far.
    pub fn take_sleeps(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.sleeps.lock().expect("clock lock"))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock")
    }
    fn sleep(&self, d: Duration) -> Sleep {
        self.sleeps.lock().expect("clock lock").push(d);
        self.advance(d);
        Box::pin(std::future::ready(()))
    }
}

/// Milliseconds since the epoch: how instants are stored.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Inverse of [`to_millis`].
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}
