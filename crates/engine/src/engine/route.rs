//! Routing: which segment and shard a point belongs to. Written once and used by the commit
//! path (the TTL check), WAL replay, flush and reads, so they can never disagree about where a
//! row lives.
//!
//! A segment is the half-open time range `[start, end)` of one `segment_interval_ns`, aligned
//! to the epoch. A series goes to shard `sid % shards`, where `shards` is the count the
//! segment was created with: a group's shard setting applies to new segments only, so rows of
//! an existing segment keep going where its earlier rows went.

use crate::model::GroupSettings;

use super::state::Version;

/// Where a point of one series lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Start of the segment (ns, inclusive).
    pub segment: i64,
    /// End of the segment (ns, exclusive).
    pub segment_end: i64,
    pub shard: u32,
    /// Shard count of the segment.
    pub shards: u32,
}

/// The segment holding `ts`: `(start, end)`, floor-aligned (also for negative timestamps).
pub fn segment_span(ts: i64, interval: i64) -> (i64, i64) {
    let start = ts.div_euclid(interval).saturating_mul(interval);
    (start, start.saturating_add(interval))
}

/// Split sorted timestamps into runs that fall in one segment each: (segment start, indexes).
/// Every run is non-empty, so this always terminates, whatever the timestamps (a run used to
/// end at the first `t >= segment end`, which never came for `t = i64::MAX`, whose segment end
/// saturates to `i64::MAX`: the flush looped forever, pushing empty slices).
pub fn segment_runs(
    ts: &[i64],
    interval: i64,
) -> impl Iterator<Item = (i64, std::ops::Range<usize>)> + '_ {
    let mut a = 0;
    std::iter::from_fn(move || {
        let first = *ts.get(a)?;
        let seg = segment_span(first, interval).0;
        let b = a + ts[a..].partition_point(|&t| segment_span(t, interval).0 == seg);
        let run = a..b.max(a + 1);
        a = run.end;
        Some((seg, run))
    })
}

/// The shard of series `sid` in a segment with `shards` shards.
pub fn shard_of(sid: u64, shards: u32) -> u32 {
    (sid % u64::from(shards.max(1))) as u32
}

/// Where the point of series `sid` at `ts` in `group` goes, given the published part set.
pub fn route(version: &Version, group: &str, settings: &GroupSettings, ts: i64, sid: u64) -> Route {
    let (segment, segment_end) = segment_span(ts, settings.segment_interval_ns);
    let shards = version
        .segment_shards(group, segment)
        .unwrap_or(settings.shards);
    Route {
        segment,
        segment_end,
        shard: shard_of(sid, shards),
        shards,
    }
}

/// Whether a segment ending at `end` is past a TTL of `ttl` ns at time `now`.
pub fn expired(end: i64, ttl: i64, now: i64) -> bool {
    end < now.saturating_sub(ttl)
}

/// Whether a point at `ts` is in a segment already past the group's TTL at `now`.
pub fn point_expired(ts: i64, settings: &GroupSettings, now: i64) -> bool {
    let (_, end) = segment_span(ts, settings.segment_interval_ns);
    expired(end, settings.ttl_ns, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_floor_aligned_half_open_ranges() {
        assert_eq!(segment_span(0, 10), (0, 10));
        assert_eq!(segment_span(9, 10), (0, 10));
        assert_eq!(segment_span(10, 10), (10, 20));
        assert_eq!(segment_span(-1, 10), (-10, 0));
        assert_eq!(segment_span(-10, 10), (-10, 0));
        // The last segment saturates instead of overflowing.
        assert_eq!(segment_span(i64::MAX, 10).1, i64::MAX);
        assert_eq!(segment_span(i64::MIN, 10).0, i64::MIN);
    }

    #[test]
    fn an_existing_segment_keeps_its_shard_count() {
        let settings = GroupSettings {
            shards: 4,
            segment_interval_ns: 100,
            ..GroupSettings::default()
        };
        let empty = Version::default();
        let r = route(&empty, "g", &settings, 150, 7);
        assert_eq!(
            r,
            Route {
                segment: 100,
                segment_end: 200,
                shard: 3,
                shards: 4
            }
        );
        let mut v = Version::default();
        v.shards.insert(
            super::super::state::ShardKey {
                group: "g".into(),
                segment: 100,
                shard: 0,
            },
            super::super::state::ShardState {
                epoch: 1,
                flushed_lsn: 0,
                segment_end: 200,
                shards: 2,
                parts: Vec::new(),
            },
        );
        assert_eq!(route(&v, "g", &settings, 150, 7).shards, 2);
        assert_eq!(route(&v, "g", &settings, 150, 7).shard, 1);
        // Another segment of the group uses the current setting.
        assert_eq!(route(&v, "g", &settings, 250, 7).shards, 4);
        assert_eq!(route(&v, "h", &settings, 150, 7).shards, 4);
    }

    #[test]
    fn ttl_is_measured_from_the_segment_end() {
        let settings = GroupSettings {
            segment_interval_ns: 100,
            ttl_ns: 1_000,
            ..GroupSettings::default()
        };
        // Segment [0, 100) ends at 100: expired once now - ttl > 100.
        assert!(!point_expired(50, &settings, 1_100));
        assert!(point_expired(50, &settings, 1_101));
        assert!(!point_expired(150, &settings, 1_101));
    }
}

#[cfg(test)]
mod extreme_tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn extreme_ts() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            (0i64..1_000_000).prop_map(|d| i64::MAX - d),
            (0i64..1_000_000).prop_map(|d| i64::MIN + d),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(0),
            Just(crate::model::MAX_TIMESTAMP),
            Just(crate::model::MIN_TIMESTAMP),
        ]
    }

    proptest! {
        #[test]
        fn segment_runs_cover_every_point_once_at_the_extremes(
            mut ts in proptest::collection::vec(extreme_ts(), 0..64),
            interval in HOUR..=30 * crate::model::NANOS_PER_DAY,
        ) {
            ts.sort_unstable();
            let mut next = 0;
            let mut last_seg = None;
            for (seg, run) in segment_runs(&ts, interval) {
                prop_assert_eq!(run.start, next);
                prop_assert!(run.end > run.start);
                next = run.end;
                prop_assert!(last_seg.is_none_or(|l| l < seg));
                last_seg = Some(seg);
                let end = segment_span(seg, interval).1;
                for &t in &ts[run] {
                    prop_assert_eq!(segment_span(t, interval).0, seg);
                    prop_assert!(seg <= t);
                    prop_assert!(t < end || end == i64::MAX);
                }
            }
            prop_assert_eq!(next, ts.len());
        }

        #[test]
        fn valid_timestamps_have_segments_that_fit(
            t in crate::model::MIN_TIMESTAMP..=crate::model::MAX_TIMESTAMP,
            interval in HOUR..=30 * crate::model::NANOS_PER_DAY,
        ) {
            let (seg, end) = segment_span(t, interval);
            // Exact in i128: no saturation happened for a valid timestamp.
            prop_assert_eq!(i128::from(seg), i128::from(t).div_euclid(i128::from(interval)) * i128::from(interval));
            prop_assert_eq!(i128::from(end), i128::from(seg) + i128::from(interval));
        }
    }
}
