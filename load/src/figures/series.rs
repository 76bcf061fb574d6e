//! The run second by second: a latency histogram and an error count per second of the
//! measured window, for the time series of `--out` and the report's plots.
//!
//! Each echo lands in the second its reply arrived in (its `now`, not a timer's guess),
//! so the seconds of every thread line up and their sum is exactly the run's histogram.
//! A finished second is kept as its recorded values only ([`Sparse`]: a few hundred
//! pairs), not as a full histogram (~140 KiB at 1 µs..60 s and 3 digits), so an hour's
//! run costs a few MiB per thread rather than hundreds.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::stats::{histogram, quantile};

/// A histogram's recorded values: (value, count) pairs, one per non-empty bucket.
/// Recording them again into a histogram of the same bounds rebuilds it exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sparse(Vec<(u64, u64)>);

impl Sparse {
    /// The recorded values of `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        Sparse(
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Adds another histogram's values (the result is no longer sorted; that is fine).
    pub fn extend(&mut self, other: &Sparse) {
        self.0.extend_from_slice(&other.0);
    }

    /// The histogram again.
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = histogram();
        for &(value, count) in &self.0 {
            let _ = h.record_n(value, count);
        }
        h
    }
}

/// One thread's seconds while the run goes on.
pub struct SecondsRecorder {
    /// The start of the measured window, once known, and how many seconds it has
    /// (replies after its end count in its last second).
    window: Cell<Option<(Instant, usize)>>,
    /// The second being filled: its index, when it ends, and its histogram.
    index: Cell<usize>,
    ends: Cell<Option<Instant>>,
    current: RefCell<Histogram<u64>>,
    /// Finished seconds, by index (empty ones included).
    finished: RefCell<Vec<Sparse>>,
    /// Errors by second (errors before the window count in second 0).
    errors: RefCell<Vec<u64>>,
    /// The most connections seen open in each second.
    open: RefCell<Vec<u64>>,
}

impl Default for SecondsRecorder {
    fn default() -> Self {
        SecondsRecorder {
            window: Cell::new(None),
            index: Cell::new(0),
            ends: Cell::new(None),
            current: RefCell::new(histogram()),
            finished: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
            open: RefCell::new(Vec::new()),
        }
    }
}

impl SecondsRecorder {
    /// The measured window starts at `from` and lasts `length`.
    pub fn start(&self, from: Instant, length: Duration) {
        let seconds = length.as_secs_f64().ceil().max(1.0) as usize;
        self.window.set(Some((from, seconds)));
        self.index.set(0);
        self.ends.set(Some(from + Duration::from_secs(1)));
    }

    /// The second `now` falls in (0 before the window or without one, the last one
    /// after it).
    fn second_of(&self, now: Instant) -> usize {
        match self.window.get() {
            Some((from, seconds)) => {
                (now.saturating_duration_since(from).as_secs() as usize).min(seconds - 1)
            }
            None => 0,
        }
    }

    /// Records a reply at `now` with latency `us`.
    #[inline]
    pub fn record(&self, now: Instant, us: u64) {
        if self.ends.get().is_some_and(|ends| now >= ends) {
            self.move_to(self.second_of(now));
        }
        let _ = self.current.borrow_mut().record(us);
    }

    /// Counts an error at `now`.
    pub fn error(&self, now: Instant) {
        let second = self.second_of(now);
        let mut errors = self.errors.borrow_mut();
        if errors.len() <= second {
            errors.resize(second + 1, 0);
        }
        errors[second] += 1;
    }

    /// Notes that `open` connections were open at `now`.
    pub fn open_connections(&self, now: Instant, open: u64) {
        if self.window.get().is_none() {
            return;
        }
        let second = self.second_of(now);
        let mut seen = self.open.borrow_mut();
        if seen.len() <= second {
            seen.resize(second + 1, 0);
        }
        seen[second] = seen[second].max(open);
    }

    /// Finishes the current second and starts `second` (later than it, or the last).
    #[cold]
    fn move_to(&self, second: usize) {
        let index = self.index.get();
        if second == index {
            // The last second takes every later reply.
            self.ends.set(None);
            return;
        }
        self.finish_current();
        self.index.set(second);
        let (from, seconds) = self
            .window
            .get()
            .expect("a second ends only within a window");
        self.ends
            .set((second + 1 < seconds).then(|| from + Duration::from_secs(second as u64 + 1)));
    }

    fn finish_current(&self) {
        let mut current = self.current.borrow_mut();
        let mut finished = self.finished.borrow_mut();
        let index = self.index.get();
        if finished.len() < index {
            finished.resize(index, Sparse::default());
        }
        finished.push(Sparse::of(&current));
        current.reset();
    }

    /// The seconds, once the run is over.
    pub fn into_seconds(self) -> Seconds {
        self.finish_current();
        Seconds {
            latency: self.finished.into_inner(),
            errors: self.errors.into_inner(),
            open: self.open.into_inner(),
        }
    }
}

/// The seconds of a run (or of one thread): latency and errors by second.
#[derive(Debug, Clone, Default)]
pub struct Seconds {
    /// Latency values (µs) by second.
    pub latency: Vec<Sparse>,
    /// Errors by second.
    pub errors: Vec<u64>,
    /// Connections open by second (the most seen in it, summed over threads).
    pub open: Vec<u64>,
}

impl Seconds {
    /// Adds another thread's seconds, second by second.
    pub fn add(&mut self, other: &Seconds) {
        add_by_second(&mut self.latency, &other.latency, |mine, theirs| {
            mine.extend(theirs)
        });
        add_by_second(&mut self.errors, &other.errors, |mine, theirs| {
            *mine += theirs
        });
        add_by_second(&mut self.open, &other.open, |mine, theirs| *mine += theirs);
    }

    /// How many seconds a measured window of `measured` has (the last may be partial):
    /// quiet seconds at its end included.
    pub fn count(measured: Duration) -> usize {
        (measured.as_secs_f64().ceil() as usize).max(1)
    }

    /// Second `i`'s figures, over a measured window of `measured` (the last second may
    /// be shorter, and takes whatever was recorded after it: replies to the window's
    /// messages that came late, or after a run stopped early).
    pub fn second(&self, i: usize, measured: Duration) -> (SecondFigures, Histogram<u64>) {
        let last = i + 1 >= Self::count(measured);
        let mut sparse = self.latency.get(i).cloned().unwrap_or_default();
        let mut errors = self.errors.get(i).copied().unwrap_or(0);
        if last {
            for later in self.latency.iter().skip(i + 1) {
                sparse.extend(later);
            }
            errors += self.errors.iter().skip(i + 1).sum::<u64>();
        }
        let latency = sparse.to_histogram();
        let start = Duration::from_secs(i as u64);
        let length = measured
            .saturating_sub(start)
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(1));
        let messages = latency.len();
        let figures = SecondFigures {
            start,
            length,
            messages,
            p50_us: quantile(&latency, 0.5),
            p99_us: quantile(&latency, 0.99),
            errors,
            connections: self.open.get(i).copied().unwrap_or(0),
        };
        (figures, latency)
    }
}

/// Adds `theirs` into `mine` second by second (`mine` grows to the longer of the two).
fn add_by_second<T: Clone + Default>(mine: &mut Vec<T>, theirs: &[T], add: impl Fn(&mut T, &T)) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), T::default());
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        add(m, t);
    }
}

/// One second's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFigures {
    /// Since the measured window began.
    pub start: Duration,
    /// A second, or less for the last one of a window that stopped early.
    pub length: Duration,
    /// Replies in it.
    pub messages: u64,
    /// Median latency, µs (0 when there were none).
    pub p50_us: u64,
    /// p99 latency, µs.
    pub p99_us: u64,
    /// Errors in it.
    pub errors: u64,
    /// The most connections open in it.
    pub connections: u64,
}

impl SecondFigures {
    /// Replies per second.
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.length.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_land_in_the_second_they_arrived_and_add_up_to_the_whole() {
        let recorder = SecondsRecorder::default();
        let from = Instant::now();
        recorder.start(from, Duration::from_secs(3));
        let mut whole = histogram();
        for (ms, us) in [
            (10, 5),
            (900, 7),
            (1_100, 9),
            (2_500, 11),
            (2_600, 13),
            (4_000, 15),
        ] {
            recorder.record(from + Duration::from_millis(ms), us);
            whole.record(us).unwrap();
        }
        recorder.error(from - Duration::from_secs(1));
        recorder.error(from + Duration::from_millis(1_500));
        let seconds = recorder.into_seconds();
        assert_eq!(seconds.latency.len(), 3);
        let counts: Vec<u64> = seconds
            .latency
            .iter()
            .map(|s| s.to_histogram().len())
            .collect();
        // 4 s is past the 3 s window: it counts in the last second.
        assert_eq!(counts, [2, 1, 3]);
        assert_eq!(seconds.errors, [1, 1]);
        let mut sum = histogram();
        for s in &seconds.latency {
            sum.add(s.to_histogram()).unwrap();
        }
        assert_eq!(sum, whole);
        let (second, _) = seconds.second(2, Duration::from_millis(2_500));
        assert_eq!(second.length, Duration::from_millis(500));
        assert_eq!(second.messages_per_sec(), 6.0);
        assert_eq!((second.p50_us, second.p99_us), (13, 15));
    }

    #[test]
    fn quiet_seconds_are_kept_empty_and_threads_add_second_by_second() {
        let a = SecondsRecorder::default();
        let b = SecondsRecorder::default();
        let from = Instant::now();
        a.start(from, Duration::from_secs(4));
        b.start(from, Duration::from_secs(4));
        a.record(from, 1);
        a.record(from + Duration::from_millis(3_200), 2);
        b.record(from + Duration::from_millis(1_200), 3);
        let mut seconds = a.into_seconds();
        seconds.add(&b.into_seconds());
        let counts: Vec<u64> = seconds
            .latency
            .iter()
            .map(|s| s.to_histogram().len())
            .collect();
        assert_eq!(counts, [1, 1, 0, 1]);
    }

    #[test]
    fn a_sparse_histogram_rebuilds_exactly() {
        let mut h = histogram();
        for v in [1, 2, 3, 1_000, 123_456, 59_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        assert_eq!(Sparse::of(&h).to_histogram(), h);
    }
}
