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
