//! One series' buckets at one resolution, kept contiguous: per time window (an hour of 1 s
//! buckets, a day of 1 min buckets, 30 days of 1 h buckets) one `Vec` of the buckets that hold
//! data, sorted by start, and the windows in a `Vec` sorted by start too (there are a few dozen
//! at most). In-order ingest appends; a query walks a few long slices.
//!
//! Why sorted runs and not dense arrays with a slot per possible bucket: a metric published
//! every 10 s would leave 9 of 10 dense 1 s slots empty, while a run holds only what exists and
//! is just as contiguous to scan.

use crate::histogram::Bucket;

/// Each tier's resolution in seconds, finest first (as in [`crate::Retention::tiers`]).
pub(super) const RESOLUTIONS: [i64; 3] = [1, 60, 3600];
/// How many buckets one window of each tier spans.
const BUCKETS_PER_WINDOW: [i64; 3] = [3600, 1440, 720];

/// One bucket and where it sits in its window.
#[derive(Debug)]
pub(super) struct Slot {
    /// (bucket start - window start) / resolution.
    offset: u32,
    /// Changed since it was last written to disk.
    dirty: bool,
    bucket: Bucket,
}

/// The buckets of one resolution.
#[derive(Debug)]
pub(super) struct Tier {
    resolution: i64,
    window: i64,
    /// (window start, that window's buckets sorted by offset), sorted by window start; no
    /// window is empty.
    windows: Vec<(i64, Vec<Slot>)>,
}

impl Tier {
    /// An empty tier of resolution `RESOLUTIONS[tier]`.
    pub(super) fn new(tier: usize) -> Tier {
        let (resolution, n) = (RESOLUTIONS[tier], BUCKETS_PER_WINDOW[tier]);
        Tier {
            resolution,
            window: resolution * n,
            windows: Vec::new(),
        }
    }

    /// (window start, offset) of the bucket starting at `start` (a multiple of the resolution).
    fn locate(&self, start: i64) -> (i64, u32) {
        let w = start - start.rem_euclid(self.window);
        // In 0..BUCKETS_PER_WINDOW, so it fits.
        (w, ((start - w) / self.resolution) as u32)
    }

    /// The bucket starting at `start`, created empty if missing, and whether it just turned
    /// dirty (so the caller records it for the next flush).
    pub(super) fn bucket_mut(&mut self, start: i64) -> (&mut Bucket, bool) {
        let (w, offset) = self.locate(start);
        let wi = match self.windows.last() {
            Some((last, _)) if *last == w => self.windows.len() - 1,
            Some((last, _)) if *last > w => {
                match self.windows.binary_search_by_key(&w, |(w, _)| *w) {
                    Ok(i) => i,
                    Err(i) => {
                        self.windows.insert(i, (w, Vec::new()));
                        i
                    }
                }
            }
            _ => {
                self.windows.push((w, Vec::new()));
                self.windows.len() - 1
            }
        };
        let slots = &mut self.windows[wi].1;
        let i = match slots.last() {
            Some(last) if last.offset == offset => slots.len() - 1,
            Some(last) if last.offset > offset => {
                match slots.binary_search_by_key(&offset, |s| s.offset) {
                    Ok(i) => i,
                    Err(i) => {
                        slots.insert(i, Slot::new(offset));
                        i
                    }
                }
            }
            _ => {
                slots.push(Slot::new(offset));
                slots.len() - 1
            }
        };
        let slot = &mut slots[i];
        let turned_dirty = !slot.dirty;
        slot.dirty = true;
        (&mut slot.bucket, turned_dirty)
    }

    /// Puts a bucket read from disk (not dirty); replaces one already there.
    pub(super) fn insert_loaded(&mut self, start: i64, bucket: Bucket) {
        let (b, _) = self.bucket_mut(start);
        *b = bucket;
        self.set_dirty(start, false);
    }

    fn slot_mut(&mut self, start: i64) -> Option<&mut Slot> {
        let (w, offset) = self.locate(start);
        let wi = self.windows.binary_search_by_key(&w, |(w, _)| *w).ok()?;
        let slots = &mut self.windows.get_mut(wi)?.1;
        let i = slots.binary_search_by_key(&offset, |s| s.offset).ok()?;
        slots.get_mut(i)
    }

    /// Sets the dirty mark of the bucket at `start`; returns whether it was dirty before
    /// (false too when there is no such bucket).
    pub(super) fn set_dirty(&mut self, start: i64, dirty: bool) -> bool {
        self.slot_mut(start)
            .is_some_and(|s| std::mem::replace(&mut s.dirty, dirty))
    }

    /// The bucket at `start` if it is dirty, marking it clean.
    pub(super) fn take_dirty(&mut self, start: i64) -> Option<&Bucket> {
        let slot = self.slot_mut(start)?;
        if !std::mem::replace(&mut slot.dirty, false) {
            return None;
        }
        Some(&slot.bucket)
    }

    /// The windows that may hold buckets starting in `first..end`.
    fn windows_in(&self, first: i64, end: i64) -> &[(i64, Vec<Slot>)] {
        let from = first.saturating_sub(first.rem_euclid(self.window));
        let lo = self.windows.partition_point(|(w, _)| *w < from);
        let hi = self.windows.partition_point(|(w, _)| *w < end);
        self.windows.get(lo..hi).unwrap_or_default()
    }

    /// Calls `f(bucket start, bucket)` for each bucket starting in `first..end`, in order.
    pub(super) fn for_each_in(&self, first: i64, end: i64, mut f: impl FnMut(i64, &Bucket)) {
        let res = self.resolution;
        for (w, slots) in self.windows_in(first, end) {
            let w = *w;
            let start_of = |s: &Slot| w + i64::from(s.offset) * res;
            let lo = if first > w {
                slots.partition_point(|s| start_of(s) < first)
            } else {
                0
            };
            let hi = if end < w + self.window {
                slots.partition_point(|s| start_of(s) < end)
            } else {
                slots.len()
            };
            for s in slots.get(lo..hi).unwrap_or_default() {
                f(start_of(s), &s.bucket);
            }
        }
    }

    /// How many buckets a query of `first..end` would visit, at most.
    pub(super) fn upper_bound_in(&self, first: i64, end: i64) -> usize {
        self.windows_in(first, end)
            .iter()
            .map(|(_, s)| s.len())
            .sum()
    }

    /// The newest bucket: (start, bucket).
    pub(super) fn last(&self) -> Option<(i64, &Bucket)> {
        let (w, slots) = self.windows.last()?;
        let s = slots.last()?;
        Some((w + i64::from(s.offset) * self.resolution, &s.bucket))
    }

    /// How many buckets it holds.
    pub(super) fn len(&self) -> usize {
        self.windows.iter().map(|(_, s)| s.len()).sum()
    }

    /// Drops the buckets starting before `cutoff`; returns whether there were any.
    pub(super) fn drop_before(&mut self, cutoff: i64) -> bool {
        let w = cutoff.saturating_sub(cutoff.rem_euclid(self.window));
        let n_windows = self.windows.partition_point(|(start, _)| *start < w);
        let mut dropped = n_windows > 0;
        self.windows.drain(..n_windows);
        if let Some((start, slots)) = self.windows.first_mut().filter(|(start, _)| *start == w) {
            // A bucket straddling the cutoff starts before it, so it goes too.
            let (start, res) = (*start, self.resolution);
            let n = slots.partition_point(|s| start + i64::from(s.offset) * res < cutoff);
            if n > 0 {
                slots.drain(..n);
                dropped = true;
            }
            if slots.is_empty() {
                self.windows.remove(0);
            }
        }
        dropped
    }
}

impl Slot {
    fn new(offset: u32) -> Slot {
        Slot {
            offset,
            dirty: false,
            bucket: Bucket::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(t: &Tier, first: i64, end: i64) -> Vec<i64> {
        let mut out = Vec::new();
        t.for_each_in(first, end, |ts, _| out.push(ts));
        out
    }

    #[test]
    fn out_of_order_buckets_come_back_sorted_across_windows() {
        let mut t = Tier::new(0);
        for ts in [7205, 5, 3599, 3600, 4, -3, 7205] {
            let (b, _) = t.bucket_mut(ts);
            b.add_value(1.0, 1.0);
        }
        assert_eq!(t.len(), 6);
        assert_eq!(
            starts(&t, i64::MIN, i64::MAX),
            vec![-3, 4, 5, 3599, 3600, 7205]
        );
        assert_eq!(starts(&t, 5, 3601), vec![5, 3599, 3600]);
        assert_eq!(starts(&t, 3600, 3600), Vec::<i64>::new());
        assert_eq!(t.last().map(|(ts, b)| (ts, b.count)), Some((7205, 2.0)));
    }

    #[test]
    fn a_one_value_bucket_fits_a_cache_line_without_heap() {
        assert!(
            std::mem::size_of::<Slot>() <= 64,
            "{}",
            std::mem::size_of::<Slot>()
        );
        let mut t = Tier::new(0);
        let (b, _) = t.bucket_mut(10);
        b.add_value(2.5, 3.0);
        assert_eq!(b.histogram.bins().len(), 1);
    }

    #[test]
    fn dirty_marks_turn_once_and_clear_when_taken() {
        let mut t = Tier::new(1);
        assert!(t.bucket_mut(120).1, "a new bucket turns dirty");
        assert!(!t.bucket_mut(120).1, "a dirty bucket stays dirty");
        assert!(t.take_dirty(120).is_some());
        assert!(t.take_dirty(120).is_none(), "taken once");
        assert!(t.take_dirty(180).is_none(), "no such bucket");
        assert!(!t.set_dirty(180, true), "no such bucket to mark");
        t.insert_loaded(240, Bucket::default());
        assert!(t.take_dirty(240).is_none(), "loaded buckets are clean");
    }

    #[test]
    fn drop_before_cuts_inside_a_window_and_whole_windows() {
        let mut t = Tier::new(1);
        for ts in (0..200).map(|i| i * 3600) {
            t.bucket_mut(ts);
        }
        assert_eq!(t.len(), 200);
        assert!(
            t.drop_before(100 * 3600 + 30),
            "a bucket straddling the cutoff goes"
        );
        assert_eq!(starts(&t, i64::MIN, i64::MAX).first(), Some(&(101 * 3600)));
        assert_eq!(t.len(), 99);
        assert!(!t.drop_before(101 * 3600), "nothing older remains");
        assert!(t.drop_before(i64::MAX / 2));
        assert_eq!(t.len(), 0);
        assert!(!t.drop_before(i64::MAX / 2), "an empty tier drops nothing");
    }
}
