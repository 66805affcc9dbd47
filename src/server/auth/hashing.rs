//! bcrypt, shared fairly. A hash takes ~250 ms of CPU at cost 12: it runs on the blocking pool
//! (never on the async workers), on at most all cores but one (so a burst of logins queues instead
//! of taking every core from message delivery), at a lower CPU priority than the workers, and
//! behind a bounded queue: one more than it holds is refused at once (a client retrying later
//! beats everyone waiting seconds behind an attacker).
//!
//! The queue is shared between sources (client addresses), not first come first served: the
//! source that has asked for the least hashing lately goes first, and when the queue is full a
//! newcomer takes the place of a waiting request from a source that has asked for more. A handful of addresses
//! each sending logins within their limits cannot keep anyone else's login out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;

use super::AuthError;

/// Who asks for a hash, for fairness: an IPv4 address, or an IPv6 /64 (one host's usual share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(Option<IpAddr>);

impl Source {
    /// The server itself (a hash at start-up).
    pub const SERVER: Source = Source(None);

    pub fn of(ip: Option<IpAddr>) -> Source {
        Source(ip.map(|ip| match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
            v4 => v4,
        }))
    }
}

/// Hashing a source has asked for lately: one per request, halving every `HALF_LIFE_SECS`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    amount: f64,
    at: Instant,
}

const HALF_LIFE_SECS: f64 = 60.0;

impl Usage {
    fn now(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.amount * 0.5f64.powf(elapsed / HALF_LIFE_SECS)
    }
}

struct Waiting {
    source: Source,
    /// Arrival order: among sources with equal usage, the earlier goes first.
    seq: u64,
    /// Told `true` when it is its turn, `false` when its place was given to another source.
    turn: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Queue {
    running: usize,
    waiting: Vec<Waiting>,
    usage: HashMap<Source, Usage>,
    seq: u64,
}

impl Queue {
    fn usage(&self, source: Source, now: Instant) -> f64 {
        self.usage.get(&source).map_or(0.0, |u| u.now(now))
    }

    fn charge(&mut self, source: Source, now: Instant) {
        let amount = self.usage(source, now) + 1.0;
        self.usage.insert(source, Usage { amount, at: now });
    }

    /// Each waiting request's position by (its source's usage, its arrival).
    fn ranked(&self, now: Instant) -> impl Iterator<Item = (usize, (f64, u64))> + '_ {
        self.waiting
            .iter()
            .enumerate()
            .map(move |(i, w)| (i, (self.usage(w.source, now), w.seq)))
    }

    /// The waiting request to serve next: the least demanding source's oldest.
    fn next(&self, now: Instant) -> Option<usize> {
        self.ranked(now)
            .min_by(|(_, a), (_, b)| a.partial_cmp(b).expect("usage is never NaN"))
            .map(|(i, _)| i)
    }

    /// The waiting request to refuse for a newcomer: the most demanding source's newest.
    fn victim(&self, now: Instant) -> Option<usize> {
        self.ranked(now)
            .max_by(|(_, a), (_, b)| a.partial_cmp(b).expect("usage is never NaN"))
            .map(|(i, _)| i)
    }
}

pub struct PasswordHasher {
    cost: u32,
    /// Hashes at once: all cores but one.
    workers: usize,
    /// Hashes running or waiting, at most.
    max_queued: usize,
    queue: Mutex<Queue>,
}

/// A running hash's place; the next waiting request gets it when this is dropped.
struct Turn<'a>(&'a PasswordHasher);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// A request waiting for its turn. Dropped while waiting (its client went away), it gives back a
/// turn that was handed to it meanwhile.
struct Waiter<'a> {
    turn: Option<oneshot::Receiver<bool>>,
    hasher: &'a PasswordHasher,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(mut turn) = self.turn.take() {
            turn.close();
            if let Ok(true) = turn.try_recv() {
                self.hasher.finished();
            }
        }
    }
}

impl PasswordHasher {
    pub fn new(cost: u32, max_queued: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordHasher {
            cost,
            workers: cores.saturating_sub(1).max(1),
            max_queued: max_queued.max(1),
            queue: Mutex::default(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hashes running or waiting now.
    pub fn queued(&self) -> usize {
        let q = self.queue();
        q.running + q.waiting.len()
    }

    pub async fn hash(&self, password: String, source: Source) -> Result<String, AuthError> {
        let cost = self.cost;
        self.run(source, move || bcrypt::hash(password, cost))
            .await?
            .map_err(Into::into)
    }

    pub async fn verify(
        &self,
        password: String,
        hash: String,
        source: Source,
    ) -> Result<bool, AuthError> {
        // A malformed stored hash is a failed login, not a server error.
        self.run(source, move || {
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
    }

    /// Forgets sources whose usage has decayed to nothing.
    pub fn retain_recent(&self) {
        let now = Instant::now();
        self.queue().usage.retain(|_, u| u.now(now) > 0.01);
    }

    async fn run<T: Send + 'static>(
        &self,
        source: Source,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _turn = self.take_turn(source).await?;
        Ok(tokio::task::spawn_blocking(move || {
            // SAFETY: get/setpriority on this thread's own id; a failure leaves the priority as it was.
            unsafe {
                let tid = libc::gettid() as libc::id_t;
                let before = libc::getpriority(libc::PRIO_PROCESS, tid);
                libc::setpriority(libc::PRIO_PROCESS, tid, 10);
                let result = work();
                libc::setpriority(libc::PRIO_PROCESS, tid, before);
                result
            }
        })
        .await?)
    }

    async fn take_turn(&self, source: Source) -> Result<Turn<'_>, AuthError> {
        let waiting = {
            let now = Instant::now();
            let mut q = self.queue();
            // What a source asks for counts, served or not: a flood ranks behind a person.
            q.charge(source, now);
            // Requests whose client went away hold no place.
            q.waiting.retain(|w| !w.turn.is_closed());
            if q.running < self.workers && q.waiting.is_empty() {
                q.running += 1;
                return Ok(Turn(self));
            }
            if q.running + q.waiting.len() >= self.max_queued {
                let mine = q.usage(source, now);
                let victim = q
                    .victim(now)
                    .filter(|&i| q.usage(q.waiting[i].source, now) > mine);
                let Some(victim) = victim else {
                    busy();
                    return Err(AuthError::Busy);
                };
                let refused = q.waiting.swap_remove(victim);
                busy();
                let _ = refused.turn.send(false);
            }
            let (turn, waiting) = oneshot::channel();
            q.seq += 1;
            let seq = q.seq;
            q.waiting.push(Waiting { source, seq, turn });
            waiting
        };
        let mut waiter = Waiter {
            turn: Some(waiting),
            hasher: self,
        };
        let told = waiter.turn.as_mut().expect("just set").await;
        waiter.turn = None;
        match told {
            Ok(true) => Ok(Turn(self)),
            _ => Err(AuthError::Busy),
        }
    }

    /// A hash ended: its place goes to the next waiting request, if any.
    fn finished(&self) {
        let now = Instant::now();
        let mut q = self.queue();
        q.running -= 1;
        while let Some(i) = q.next(now) {
            let next = q.waiting.swap_remove(i);
            if next.turn.send(true).is_ok() {
                q.running += 1;
                return;
            }
        }
    }
}

fn busy() {
    crate::server::metrics::METRICS.throttled(crate::server::metrics::Throttle::HashingQueue);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn from(last: u8) -> Source {
        Source::of(Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))))
    }

    #[test]
    fn the_least_used_source_is_served_first_and_refused_last() {
        let now = Instant::now();
        let mut q = Queue::default();
        for _ in 0..5 {
            q.charge(from(1), now);
        }
        q.charge(from(2), now);
        for (seq, source) in [(1, from(1)), (2, from(2)), (3, from(3)), (4, from(1))] {
            let (turn, _) = oneshot::channel();
            q.waiting.push(Waiting { source, seq, turn });
        }
        assert_eq!(q.waiting[q.next(now).unwrap()].source, from(3));
        let victim = &q.waiting[q.victim(now).unwrap()];
        assert_eq!((victim.source, victim.seq), (from(1), 4));
    }

    #[test]
    fn ipv6_hosts_share_by_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(Some(a)), Source::of(Some(b)));
        assert_ne!(Source::of(Some(a)), Source::of(Some(c)));
    }

    #[test]
    fn usage_halves_every_minute() {
        let now = Instant::now();
        let u = Usage {
            amount: 8.0,
            at: now,
        };
        let later = now + std::time::Duration::from_secs(120);
        assert!((u.now(later) - 2.0).abs() < 1e-9);
    }
}
