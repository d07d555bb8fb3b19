//! Trying again: an operation that lost a race (a failed condition) or was left unfinished
//! is run again after the pauses of a [`Schedule`], the way Svix's `run_with_retries` does.
//! The schedule is data, so every caller's retry policy reads in one line.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::store::StoreError;

/// The pauses before each retry: as many retries as pauses (a zero pause retries at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pauses: &'static [Duration],
    /// Each pause is drawn at random from `[pause / 8, pause)`, so writers that collided do
    /// not collide again in step.
    jitter: bool,
}

impl Schedule {
    pub const fn new(pauses: &'static [Duration]) -> Self {
        Self {
            pauses,
            jitter: false,
        }
    }

    pub const fn jittered(self) -> Self {
        Self {
            jitter: true,
            ..self
        }
    }

    /// How many times the operation runs at most.
    pub fn tries(&self) -> usize {
        self.pauses.len() + 1
    }

    /// The pause before retry `n` (from 0), `None` when the schedule is spent.
    pub fn pause(&self, n: usize) -> Option<Duration> {
        let p = *self.pauses.get(n)?;
        if !self.jitter || p.is_zero() {
            return Some(p);
        }
        Some(rand::thread_rng().gen_range(p / 8..p))
    }
}

/// The retries left of one operation: after a failed try, [`Retry::wait`] pauses as the
/// schedule says and tells whether to try again. For operations that change their own
/// state between tries (re-read what moved on); others use [`run_with_retries`].
#[derive(Debug)]
pub struct Retry<'a> {
    schedule: &'a Schedule,
    done: usize,
}

impl<'a> Retry<'a> {
    pub fn new(schedule: &'a Schedule) -> Self {
        Self { schedule, done: 0 }
    }

    /// Waits before the next try; `false` (at once) when the schedule is spent.
    pub async fn wait(&mut self) -> bool {
        let Some(p) = self.schedule.pause(self.done) else {
            return false;
        };
        self.done += 1;
        if !p.is_zero() {
            tokio::time::sleep(p).await;
        }
        true
    }
}

/// Runs `attempt` until it succeeds, fails in a way `should_retry` does not retry, or the
/// schedule is spent; the last result is returned.
pub async fn run_with_retries<T, E, F, Fut>(
    schedule: &Schedule,
    should_retry: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retry = Retry::new(schedule);
    loop {
        match attempt().await {
            Err(e) if should_retry(&e) => {
                if !retry.wait().await {
                    return Err(e);
                }
            }
            done => return done,
        }
    }
}

/// [`run_with_retries`] for lost races: a `Conflict` (a failed condition) is tried again.
pub async fn on_conflict<T, F, Fut>(schedule: &Schedule, attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    run_with_retries(schedule, StoreError::is_conflict, attempt).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;

    use super::*;

    const THREE: Schedule = Schedule::new(&[Duration::ZERO; 2]);

    fn conflict() -> StoreError {
        StoreError::Conflict("c".into())
    }

    #[tokio::test]
    async fn a_conflict_is_tried_again_until_the_schedule_is_spent() {
        let tries = AtomicUsize::new(0);
        let r: Result<(), _> = on_conflict(&THREE, || async {
            tries.fetch_add(1, SeqCst);
            Err(conflict())
        })
        .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        assert_eq!(tries.into_inner(), THREE.tries());
    }

    #[tokio::test]
    async fn success_and_other_errors_end_the_tries() {
        let tries = AtomicUsize::new(0);
        let r = on_conflict(&THREE, || async {
            let n = tries.fetch_add(1, SeqCst) + 1;
            if n < 2 { Err(conflict()) } else { Ok(n) }
        })
        .await;
        assert_eq!(r.unwrap(), 2);
        let tries = AtomicUsize::new(0);
        let r: Result<(), _> = on_conflict(&THREE, || async {
            tries.fetch_add(1, SeqCst);
            Err(StoreError::Shape("s".into()))
        })
        .await;
        assert!(matches!(r, Err(StoreError::Shape(_))));
        assert_eq!(tries.into_inner(), 1);
    }

    #[test]
    fn jittered_pauses_stay_within_their_bounds() {
        const S: Schedule = Schedule::new(&[Duration::from_millis(80)]).jittered();
        for _ in 0..100 {
            let p = S.pause(0).unwrap();
            assert!(p >= Duration::from_millis(10) && p < Duration::from_millis(80));
        }
        assert_eq!(S.pause(1), None);
        assert_eq!(THREE.pause(1), Some(Duration::ZERO));
    }
}
