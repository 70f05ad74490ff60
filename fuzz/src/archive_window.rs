//! The `archive` target: archive object names, the WAL segment decoder archive objects carry,
//! and the point-in-time window and retention computations over fuzzed listings.
//!
//! The first byte picks the part. Beyond "no panic", each part checks a property:
//! - a name that parses prints back to itself;
//! - decoded records re-encode to a segment that decodes to the same records;
//! - windows are well formed (LSN and time ranges ordered, anchors inside their run, objects
//!   contiguous), and retention never removes an object holding a record after the cut of a
//!   kept snapshot that anchors the object's window.

use strata_backup::Manifest;
use strata_backup::archive::object::ObjectName;
use strata_backup::archive::retention::unneeded;
use strata_backup::archive::window::{ArchiveListing, Windows};
use strata_engine::backup_api::archive::{decode_segment, encode_segment};

const CHAINS: [&str; 3] = ["0123456789abcdef", "fedcba9876543210", "00000000000000aa"];
const NODES: [&str; 2] = ["n1", "odd node/ü"];

pub fn archive(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => names(rest),
        1 => segment(rest),
        _ => windows(rest),
    }
}

fn names(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Some(n) = ObjectName::parse(&s) {
        let p = n.path();
        assert_eq!(ObjectName::parse(p.as_ref()), Some(n), "{s}");
    }
}

fn segment(data: &[u8]) {
    let Ok(recs) = decode_segment("fuzz", data) else {
        return;
    };
    let again = encode_segment(0, &recs);
    let back = decode_segment("fuzz", &again);
    assert_eq!(back.ok().as_ref(), Some(&recs), "re-encoded records differ");
}

fn manifest(id: String, node: &str, lsn: u64, time: i64) -> Option<Manifest> {
    serde_json::from_value(serde_json::json!({
        "version": 1, "id": id, "time": time, "finished": time, "node_id": node,
        "engine_format": 1, "kind": "full", "parent": null, "lsn": lsn,
        "catalog": {"groups": []}, "parts": [], "wal": [], "files": [], "labels": {},
        "stats": {"files": 0, "bytes": 0, "new_objects": 0, "new_bytes": 0,
                  "uploaded_bytes": 0, "reused_objects": 0}
    }))
    .ok()
}

/// Six-byte records: kind (object or snapshot), node, chain, LSN, length, time step.
/// Times follow LSNs (commit times never decrease along the WAL) with fuzzed steps.
fn windows(data: &[u8]) {
    let mut listing = ArchiveListing::default();
    let mut manifests = Vec::new();
    for (i, r) in data.chunks_exact(6).enumerate() {
        let node = NODES[usize::from(r[1]) % NODES.len()];
        let lsn = u64::from(r[3]) + 1;
        let time = |l: u64| (l as i64) * 1_000 + i64::from(r[5] % 7);
        if r[0] % 3 == 0 {
            if let Some(m) = manifest(format!("{i:016x}"), node, lsn - 1, time(lsn - 1)) {
                manifests.push(m);
            }
        } else {
            let last = lsn + u64::from(r[4] % 16);
            listing.objects.push((
                ObjectName {
                    node: node.into(),
                    chain: CHAINS[usize::from(r[2]) % CHAINS.len()].into(),
                    first_lsn: lsn,
                    last_lsn: last,
                    first_time: time(lsn),
                    last_time: time(last),
                },
                u64::from(r[4]),
            ));
        }
    }
    listing.objects.sort();
    let w = Windows::compute(&listing, &manifests);
    for win in &w.windows {
        assert!(win.first_lsn <= win.last_lsn, "{win:?}");
        assert!(win.start_ns <= win.end_ns, "{win:?}");
        assert!(!win.anchors.is_empty(), "{win:?}");
        for (_, t, lsn) in &win.anchors {
            assert!(win.first_lsn <= lsn + 1 && *lsn <= win.last_lsn, "{win:?}");
            assert!(*t <= win.end_ns, "{win:?}");
        }
        let mut next = win.first_lsn;
        for (o, _) in &win.objects {
            assert!(o.first_lsn <= next && o.last_lsn >= next, "{win:?}");
            next = o.last_lsn + 1;
        }
        assert_eq!(next, win.last_lsn + 1, "{win:?}");
    }
    // Keep every other snapshot; nothing a kept anchor's window replays may go.
    let kept: Vec<Manifest> = manifests.iter().step_by(2).cloned().collect();
    let gone = unneeded(&listing, &kept);
    for win in &w.windows {
        for m in kept.iter().filter(|m| m.node_id == win.node) {
            if !win.anchors.iter().any(|a| a.0 == m.id) {
                continue;
            }
            for (o, _) in &win.objects {
                if o.last_lsn > m.lsn {
                    assert!(
                        !gone.iter().any(|(g, _)| g == o),
                        "retention removes {o:?}, needed by kept snapshot {} of {win:?}",
                        m.id
                    );
                }
            }
        }
    }
}
