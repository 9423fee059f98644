//! Per-department rate limit: one token bucket per department code (default 20 requests/s,
//! burst 100). Buckets live in memory; a restart refills them, which a limit against
//! accidental floods allows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Rate and burst of every department's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 20.0, burst: 100.0 }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of every department seen.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `key`'s bucket: `Ok` when allowed, else `Err(seconds)` until
    /// the next request would be (for `Retry-After`).
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let b =
            buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.limit.burst, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.limit.per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let r = RateLimiter::new(RateLimit { per_second: 2.0, burst: 3.0 });
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.take("a", t), Ok(()));
        }
        assert_eq!(r.take("a", t), Err(1));
        assert_eq!(r.take("b", t), Ok(()), "buckets are per department");
        assert_eq!(r.take("a", t + std::time::Duration::from_millis(600)), Ok(()));
    }
}
