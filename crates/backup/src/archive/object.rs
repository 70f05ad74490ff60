//! Archive objects: `archive/<node>/<chain>/<first_lsn>-<last_lsn>_<first_time>-<last_time>`,
//! each an object container (`docs/format/repository.md`) whose plaintext is a WAL v2 segment
//! (`docs/format/wal.md`, sequence number 0) holding the records `first_lsn..=last_lsn` in
//! order, every LSN present. Written once, create-if-absent.

use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_engine::backup_api::archive::{WalRecord, decode_segment, encode_segment};

use crate::error::{Error, Result};
use crate::format;
use crate::repo::Repository;

pub const ARCHIVE_DIR: &str = "archive";

/// One archive object, as named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectName {
    pub node: String,
    pub chain: String,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub first_time: i64,
    pub last_time: i64,
}

/// The path segment of a node id: kept as is when it is plain (letters, digits, `-`, `_`),
/// else `.` and its bytes in hex (a plain id never starts with `.`; object stores keep `.`
/// as is), so any node id makes one safe segment.
pub fn node_segment(node: &str) -> String {
    let plain = !node.is_empty()
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        node.to_string()
    } else {
        format!(".{}", hex::encode(node.as_bytes()))
    }
}

fn node_from_segment(seg: &str) -> Option<String> {
    match seg.strip_prefix('.') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => Some(seg.to_string()),
    }
}

fn is_chain(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ObjectName {
    pub fn path(&self) -> Path {
        Path::from(format!(
            "{ARCHIVE_DIR}/{}/{}/{:016x}-{:016x}_{:019}-{:019}",
            node_segment(&self.node),
            self.chain,
            self.first_lsn,
            self.last_lsn,
            self.first_time,
            self.last_time
        ))
    }

    /// Parses a listed path; `None` for anything that is not an archive object's name.
    pub fn parse(path: &str) -> Option<ObjectName> {
        let mut it = path.split('/');
        if it.next()? != ARCHIVE_DIR {
            return None;
        }
        let node = node_from_segment(it.next()?)?;
        let chain = it.next()?.to_string();
        let leaf = it.next()?;
        if it.next().is_some() || !is_chain(&chain) {
            return None;
        }
        let (lsns, times) = leaf.split_once('_')?;
        let (a, b) = lsns.split_once('-')?;
        let (c, d) = times.split_once('-')?;
        if a.len() != 16 || b.len() != 16 || c.len() != 19 || d.len() != 19 {
            return None;
        }
        let n = ObjectName {
            node,
            chain,
            first_lsn: u64::from_str_radix(a, 16).ok()?,
            last_lsn: u64::from_str_radix(b, 16).ok()?,
            first_time: c.parse().ok()?,
            last_time: d.parse().ok()?,
        };
        (n.first_lsn >= 1 && n.first_lsn <= n.last_lsn && n.first_time <= n.last_time).then_some(n)
    }

    /// The name of an object holding `records` (non-empty, LSNs consecutive).
    pub fn of(node: &str, chain: &str, records: &[WalRecord]) -> Result<ObjectName> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Err(Error::InvalidArgument(
                "an archive object needs records".into(),
            ));
        };
        Ok(ObjectName {
            node: node.to_string(),
            chain: chain.to_string(),
            first_lsn: first.lsn,
            last_lsn: last.lsn,
            first_time: records
                .iter()
                .map(|r| r.commit_time_ns)
                .min()
                .unwrap_or(0)
                .max(0),
            last_time: records
                .iter()
                .map(|r| r.commit_time_ns)
                .max()
                .unwrap_or(0)
                .max(0),
        })
    }
}

/// Writes `records` as one archive object (create-if-absent; a lost reply's retry that finds
/// the same bytes succeeds). Returns its name and stored size.
pub async fn put(
    repo: &Repository,
    node: &str,
    chain: &str,
    records: &[WalRecord],
) -> Result<(ObjectName, u64)> {
    let name = ObjectName::of(node, chain, records)?;
    let path = name.path();
    let plain = encode_segment(0, records);
    let bytes = format::encode_all(repo.keys(), path.as_ref(), repo.compression(), &plain)?;
    let size = bytes.len() as u64;
    if let Err(e) = crate::repo::put_create(repo.store(), &path, bytes).await {
        // A put whose reply was lost, shipped again: the same records under the same name,
        // sealed with another salt. What is there is ours if it holds exactly these records.
        match get(repo, &name).await {
            Ok(there) if there == records => {}
            _ => return Err(e),
        }
    }
    Ok((name, size))
}

/// Reads and checks an archive object: authenticated container, strict WAL frames, and
/// records that are exactly what its name says (consecutive LSNs from `first_lsn` to
/// `last_lsn`, commit times inside the named range and never decreasing).
pub async fn get(repo: &Repository, name: &ObjectName) -> Result<Vec<WalRecord>> {
    let path = name.path();
    let bytes = match repo.store().get(&path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::corrupt(
                path.to_string(),
                "archive object is missing",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let plain = format::decode_all(repo.keys(), path.as_ref(), &bytes)?;
    let records = decode_segment(path.as_ref(), &plain)
        .map_err(|e| Error::corrupt(path.to_string(), e.to_string()))?;
    check_records(name, &records).map_err(|d| Error::corrupt(path.to_string(), d))?;
    Ok(records)
}

fn check_records(name: &ObjectName, records: &[WalRecord]) -> std::result::Result<(), String> {
    let mut want = name.first_lsn;
    let mut prev_time = i64::MIN;
    for r in records {
        if r.lsn != want {
            return Err(format!("holds LSN {} where {want} was expected", r.lsn));
        }
        if r.commit_time_ns < prev_time
            || r.commit_time_ns.max(0) < name.first_time
            || r.commit_time_ns.max(0) > name.last_time
        {
            return Err(format!(
                "LSN {} has commit time {} outside its name's range",
                r.lsn, r.commit_time_ns
            ));
        }
        prev_time = r.commit_time_ns;
        want += 1;
    }
    if want != name.last_lsn + 1 {
        return Err(format!(
            "ends at LSN {} where its name says {}",
            want - 1,
            name.last_lsn
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_junk() {
        for node in ["node-1", "a.b/c d", "ünï"] {
            let n = ObjectName {
                node: node.into(),
                chain: "0123456789abcdef".into(),
                first_lsn: 5,
                last_lsn: 9,
                first_time: 1_700_000_000_000_000_000,
                last_time: 1_700_000_000_500_000_000,
            };
            let p = n.path();
            assert_eq!(p.as_ref().split('/').count(), 4, "{p}");
            assert_eq!(ObjectName::parse(p.as_ref()), Some(n));
        }
        for junk in [
            "archive/n/0123456789abcdef/x",
            "archive/n/nothex/0000000000000005-0000000000000009_0000000000000000001-0000000000000000002",
            "archive/n/0123456789abcdef/0000000000000009-0000000000000005_0000000000000000001-0000000000000000002",
            "data/ab/cd",
        ] {
            assert_eq!(ObjectName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn records_must_be_what_the_name_says() {
        let rec = |lsn, t| WalRecord {
            lsn,
            kind: 1,
            commit_time_ns: t,
            payload: vec![1, 2, 3],
        };
        let recs = vec![rec(5, 10), rec(6, 11), rec(7, 11)];
        let n = ObjectName::of("n", "0123456789abcdef", &recs).unwrap();
        assert_eq!(
            (n.first_lsn, n.last_lsn, n.first_time, n.last_time),
            (5, 7, 10, 11)
        );
        check_records(&n, &recs).unwrap();
        assert!(check_records(&n, &recs[..2]).is_err());
        assert!(check_records(&n, &[rec(5, 10), rec(7, 11), rec(8, 11)]).is_err());
        assert!(check_records(&n, &[rec(5, 10), rec(6, 12), rec(7, 11)]).is_err());
    }
}
