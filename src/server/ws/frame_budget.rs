//! How fast one WebSocket client may send frames: a token bucket per connection that every frame
//! kind but `message` draws on (a `sync`, which reads up to 500 messages, costs more; messages have
//! the per-user send rate of their own), so that no client can keep a core or the database busy.

use std::time::{Duration, Instant};

use crate::proto::ClientFrame;
use crate::proto::frames::Refused;

/// A client may send this many seconds' worth of frames at once after a quiet spell.
const BURST_SECONDS: f32 = 3.0;
/// What a `sync` frame costs, in frames.
const SYNC_COST: f32 = 5.0;
/// Refused frames in a row after which the client is taken to be flooding and is closed.
const FLOODING_AFTER: u32 = 500;
/// A refused client is told at most this often (the rest are dropped without an answer).
const TELL_EVERY: Duration = Duration::from_secs(1);

pub struct FrameBudget {
    /// Frames per second, for as long as the client likes; 0: no limit.
    per_second: f32,
    tokens: f32,
    at: Instant,
    refused_in_a_row: u32,
    told_at: Option<Instant>,
}

#[derive(Debug, PartialEq)]
pub enum Spent {
    Ok,
    /// Not now. `tell`: answer with an error frame (at most once per second).
    Refused {
        retry_after_ms: u64,
        tell: bool,
    },
    /// Kept sending long after being refused: close the connection.
    Abusive,
}

/// What a frame costs, by its type (one the parser refused costs one).
pub fn cost_of(frame: Result<&ClientFrame, &Refused>) -> f32 {
    match frame {
        Ok(ClientFrame::Message { .. }) => 0.0,
        Ok(ClientFrame::Sync { .. }) => SYNC_COST,
        _ => 1.0,
    }
}

impl FrameBudget {
    pub fn new(now: Instant, per_second: u32) -> Self {
        let per_second = per_second as f32;
        FrameBudget {
            per_second,
            tokens: per_second * BURST_SECONDS,
            at: now,
            refused_in_a_row: 0,
            told_at: None,
        }
    }

    pub fn spend(&mut self, now: Instant, cost: f32) -> Spent {
        if self.per_second == 0.0 {
            return Spent::Ok;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f32();
        self.tokens =
            (self.tokens + elapsed * self.per_second).min(self.per_second * BURST_SECONDS);
        self.at = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            self.refused_in_a_row = 0;
            return Spent::Ok;
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > FLOODING_AFTER {
            return Spent::Abusive;
        }
        let tell = self
            .told_at
            .is_none_or(|t| now.saturating_duration_since(t) >= TELL_EVERY);
        if tell {
            self.told_at = Some(now);
        }
        let retry_after_ms = (((cost - self.tokens) / self.per_second) * 1000.0)
            .ceil()
            .max(1.0) as u64;
        Spent::Refused {
            retry_after_ms,
            tell,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 20;
    const BURST: u32 = 60;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::now();
        let mut budget = FrameBudget::new(t0, RATE);
        for _ in 0..BURST {
            assert_eq!(budget.spend(t0, 1.0), Spent::Ok);
        }
        assert!(matches!(
            budget.spend(t0, 1.0),
            Spent::Refused { tell: true, .. }
        ));
        assert!(matches!(
            budget.spend(t0, 1.0),
            Spent::Refused { tell: false, .. }
        ));
        // One frame's worth of time later, one more frame.
        let later = t0 + Duration::from_secs_f32(1.0 / RATE as f32);
        assert_eq!(budget.spend(later, 1.0), Spent::Ok);
    }

    #[test]
    fn flooding_on_after_refusal_closes() {
        let t0 = Instant::now();
        let mut budget = FrameBudget::new(t0, RATE);
        let mut outcome = Spent::Ok;
        for _ in 0..(BURST + FLOODING_AFTER + 1) {
            outcome = budget.spend(t0, 1.0);
        }
        assert_eq!(outcome, Spent::Abusive);
    }

    #[test]
    fn no_limit_when_zero() {
        let t0 = Instant::now();
        let mut budget = FrameBudget::new(t0, 0);
        for _ in 0..10_000 {
            assert_eq!(budget.spend(t0, 1.0), Spent::Ok);
        }
    }

    #[test]
    fn each_kind_has_its_cost() {
        let cost = |text: &str| cost_of(ClientFrame::parse(text).as_ref());
        assert_eq!(cost(r#"{"type":"sync","since":0}"#), SYNC_COST);
        assert_eq!(cost(r#"{"type":"typing","room_id":1}"#), 1.0);
        assert_eq!(
            cost(r#"{"room_id":1,"type":"message","content":"sync"}"#),
            0.0
        );
        assert_eq!(cost(r#"{"type":"typing","content":"\"message\""}"#), 1.0);
        assert_eq!(cost("not json"), 1.0);
    }
}
