//! The bytes that points answers hold in memory, bounded across requests.
//!
//! Each points answer states how many bytes it holds at most at once (the stored bytes it
//! fetches, and the decoded and encoded points of the pieces in flight) and waits, first
//! come first served, until the [`AnswerBudget`] has them; its [`Held`] bytes return when
//! the answer ends or its client goes away. An answer bigger than the whole budget waits
//! for all of it and runs alone. Beyond [`AnswerBudget::max_waiting`] answers waiting, a
//! request is refused at once with 503 `busy` and `Retry-After`. An answer that grows as it
//! is read (a VastDB table's, held whole) takes more with [`Held::grow`], which never
//! waits: waiting for more while holding some could wait forever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The budget counts in units of this many bytes.
const UNIT: u64 = 1 << 10;

/// Bytes in memory shared by the points answers in flight.
pub struct AnswerBudget {
    units: Arc<Semaphore>,
    capacity: u32,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl AnswerBudget {
    /// A budget of `bytes` (at least one unit of 1 KiB), with at most `max_waiting`
    /// answers waiting for it.
    pub fn new(bytes: u64, max_waiting: usize) -> Self {
        let capacity = (bytes / UNIT).clamp(1, u64::from(u32::MAX >> 3)) as u32;
        Self {
            units: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.capacity) * UNIT
    }

    /// The answers that may wait at once; one more is refused.
    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    /// Bytes held by the answers in flight.
    pub fn held_bytes(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.units.available_permits() as u64) * UNIT
    }

    /// Answers waiting for bytes.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for `bytes` (all of the budget when it is smaller), after the answers already
    /// waiting; 503 `busy` at once when [`AnswerBudget::max_waiting`] answers wait.
    pub async fn hold(&self, bytes: u64) -> Result<Held, ApiError> {
        let units = self.units_of(bytes);
        if let Ok(permit) = self.units.clone().try_acquire_many_owned(units) {
            return Ok(self.held(permit));
        }
        let waiting = Waiting::enter(&self.waiting, self.max_waiting).ok_or_else(busy)?;
        let permit = self
            .units
            .clone()
            .acquire_many_owned(units)
            .await
            .map_err(|_| busy())?;
        drop(waiting);
        Ok(self.held(permit))
    }

    fn held(&self, permit: OwnedSemaphorePermit) -> Held {
        Held {
            units: self.units.clone(),
            capacity: self.capacity,
            permit,
        }
    }

    fn units_of(&self, bytes: u64) -> u32 {
        bytes.div_ceil(UNIT).clamp(1, u64::from(self.capacity)) as u32
    }
}

/// The bytes an answer holds of its [`AnswerBudget`], returned when dropped.
#[must_use = "the bytes return to the budget when this is dropped"]
pub struct Held {
    units: Arc<Semaphore>,
    capacity: u32,
    permit: OwnedSemaphorePermit,
}

impl Held {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.permit.num_permits() as u64 * UNIT
    }

    /// Holds `total` bytes in all when that is more than held, if the budget has them
    /// free now; 503 `busy` otherwise, and when `total` is over the whole budget.
    pub fn grow(&mut self, total: u64) -> Result<(), ApiError> {
        let held = self.permit.num_permits() as u64;
        let wanted = total.div_ceil(UNIT);
        if wanted <= held {
            return Ok(());
        }
        if wanted > u64::from(self.capacity) {
            return Err(busy());
        }
        let more = self
            .units
            .clone()
            .try_acquire_many_owned((wanted - held) as u32)
            .map_err(|_| busy())?;
        self.permit.merge(more);
        Ok(())
    }
}

/// One answer among those waiting, counted while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts one more waiting answer, unless `max` already wait.
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// 503: the answers in flight hold the budget's bytes and enough others wait.
fn busy() -> ApiError {
    ApiError::busy("the server is answering as many points as it may hold; retry shortly")
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::FutureExt;

    use super::*;

    #[test]
    fn answers_wait_their_turn_for_bytes_and_return_them_when_dropped() {
        let budget = AnswerBudget::new(100 * UNIT, 2);
        let first = block_on(budget.hold(60 * UNIT)).unwrap();
        assert_eq!(budget.held_bytes(), 60 * UNIT);
        // 50 more do not fit: the second waits, the third too, and a fourth is refused.
        let mut second = Box::pin(budget.hold(50 * UNIT));
        assert!((&mut second).now_or_never().is_none());
        let mut third = Box::pin(budget.hold(UNIT));
        assert!((&mut third).now_or_never().is_none());
        assert_eq!(budget.waiting(), 2);
        let refused = block_on(budget.hold(UNIT)).err().unwrap();
        assert_eq!((refused.status.as_u16(), refused.code), (503, "busy"));
        // First come, first served: the small third waits behind the second though it fits.
        assert!((&mut third).now_or_never().is_none());
        drop(first);
        let second = (&mut second).now_or_never().unwrap().unwrap();
        let third = (&mut third).now_or_never().unwrap().unwrap();
        assert_eq!(budget.waiting(), 0);
        assert_eq!(budget.held_bytes(), 51 * UNIT);
        drop((second, third));
        assert_eq!(budget.held_bytes(), 0);
    }

    #[test]
    fn an_answer_over_the_budget_runs_alone_and_a_wait_given_up_leaves_no_trace() {
        let budget = AnswerBudget::new(10 * UNIT, 1);
        let all = block_on(budget.hold(1 << 40)).unwrap();
        assert_eq!(all.bytes(), budget.bytes());
        let mut gone = Box::pin(budget.hold(UNIT));
        assert!((&mut gone).now_or_never().is_none());
        // The client went away while its answer waited: it no longer counts.
        drop(gone);
        assert_eq!(budget.waiting(), 0);
        drop(all);
        let zero = block_on(budget.hold(0)).unwrap();
        assert_eq!(zero.bytes(), UNIT);
    }

    #[test]
    fn an_answer_grows_only_into_free_bytes() {
        let budget = AnswerBudget::new(10 * UNIT, 4);
        let mut held = block_on(budget.hold(2 * UNIT)).unwrap();
        held.grow(UNIT).unwrap();
        assert_eq!(held.bytes(), 2 * UNIT);
        held.grow(6 * UNIT + 1).unwrap();
        assert_eq!(held.bytes(), 7 * UNIT);
        let other = block_on(budget.hold(3 * UNIT)).unwrap();
        assert_eq!(held.grow(8 * UNIT).unwrap_err().code, "busy");
        drop(other);
        held.grow(10 * UNIT).unwrap();
        assert_eq!(held.grow(11 * UNIT).unwrap_err().code, "busy");
        drop(held);
        assert_eq!(budget.held_bytes(), 0);
    }
}
