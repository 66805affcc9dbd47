//! Throttles on guessing: login attempts per account and per address, and registrations and
//! password changes per address, all checked before any password is hashed.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::server::metrics::{METRICS, Throttle};

pub struct AuthThrottle {
    /// Attempts on an account from addresses it has not signed in from.
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    /// Attempts on an account from one address it has signed in from: a budget of their own, so
    /// that a stranger spending the account's shared budget cannot lock its owner out (OWASP:
    /// throttle by account and source).
    per_known_source: Option<DefaultKeyedRateLimiter<(String, IpAddr)>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// A keyed limiter of `per_minute` attempts with a burst of as many; None when 0 (unlimited).
fn per_minute<K: std::hash::Hash + Eq + Clone>(
    per_minute: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let n = NonZeroU32::new(per_minute)?;
    Some(RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))
}

/// An attempt refused for now: what was too frequent, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what}; retry in {} s", retry_after_ms.div_ceil(1000))]
pub struct Throttled {
    pub what: &'static str,
    pub retry_after_ms: u64,
}

fn refused(
    what: &'static str,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> Throttled {
    let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
    Throttled {
        what,
        retry_after_ms: wait.as_millis().max(1) as u64,
    }
}

impl AuthThrottle {
    pub fn new(login_per_account: u32, per_ip: u32) -> Self {
        AuthThrottle {
            per_account: per_minute(login_per_account),
            per_known_source: per_minute(login_per_account),
            per_ip: per_minute(per_ip),
        }
    }

    /// One more login, registration or password change from `ip`.
    pub fn from_address(&self, ip: Option<IpAddr>) -> Result<(), Throttled> {
        match (&self.per_ip, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).map_err(|n| {
                METRICS.throttled(Throttle::AuthAddress);
                refused("Too many attempts from this address", n)
            }),
            _ => Ok(()),
        }
    }

    /// One more login attempt on the account named `login` (a username or an email, in any case)
    /// from `source`; `known` when the account has signed in from there before (or the caller is
    /// signed in already), which draws on that address's own budget.
    pub fn login_attempt(
        &self,
        login: &str,
        source: Option<IpAddr>,
        known: bool,
    ) -> Result<(), Throttled> {
        let account = login.trim().to_lowercase();
        let checked = match (&self.per_account, &self.per_known_source, source) {
            (_, Some(limiter), Some(ip)) if known => limiter.check_key(&(account, ip)),
            (Some(limiter), _, _) => limiter.check_key(&account),
            _ => Ok(()),
        };
        checked.map_err(|n| {
            METRICS.throttled(Throttle::LoginAccount);
            refused("Too many login attempts for this account", n)
        })
    }

    /// Forgets keys that have been quiet long enough to be back at a full burst.
    pub fn retain_recent(&self) {
        if let Some(l) = &self.per_account {
            l.retain_recent();
        }
        if let Some(l) = &self.per_known_source {
            l.retain_recent();
        }
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
    }
}
