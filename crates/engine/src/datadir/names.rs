//! The names a restore gives to the entries beside a data directory `DIR` (all in `DIR`'s
//! parent, so every move between them is a rename inside one directory):
//! `.DIR.restore-<snapshot>` (staging), `.DIR.restore-journal` (+ `.tmp`) and
//! `DIR.pre-restore-<UTC>-<4 hex>` (rollback).

use std::path::{Component, Path, PathBuf};

/// A data directory seen from its parent.
#[derive(Debug, Clone)]
pub(crate) struct Siblings {
    parent: PathBuf,
    name: String,
}

impl Siblings {
    /// `None` for a path that names no directory entry (`/`, `.`, `..`, non-UTF-8): no
    /// restore can have staged or journaled anything for it. A relative path without a
    /// directory part (`r2`) has the current directory as its parent.
    pub fn of(target: &Path) -> Option<Siblings> {
        let name = match target.components().next_back()? {
            Component::Normal(n) => n.to_str()?.to_string(),
            _ => return None,
        };
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(Siblings { parent, name })
    }

    pub fn parent(&self) -> &Path {
        &self.parent
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name` inside the parent.
    pub fn path(&self, name: &str) -> PathBuf {
        self.parent.join(name)
    }

    pub fn target(&self) -> PathBuf {
        self.path(&self.name)
    }

    pub fn journal(&self) -> String {
        format!(".{}.restore-journal", self.name)
    }

    pub fn journal_tmp(&self) -> String {
        format!(".{}.restore-journal.tmp", self.name)
    }

    /// The temporary journal name of Strata v1 (`Path::with_extension` of the journal).
    pub fn legacy_journal_tmp(&self) -> String {
        format!(".{}.tmp", self.name)
    }

    pub fn staging_prefix(&self) -> String {
        format!(".{}.restore-", self.name)
    }

    pub fn staging(&self, snapshot: &str) -> String {
        format!("{}{snapshot}", self.staging_prefix())
    }

    /// A fresh rollback name, unique even for two restores in one second.
    pub fn new_rollback(&self) -> String {
        format!(
            "{}.pre-restore-{}-{}",
            self.name,
            utc_stamp(now_secs()),
            hex::encode(rand::random::<[u8; 2]>())
        )
    }
}

/// Whether `name` is one plain directory entry (what a journal may name).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYYMMDDThhmmssZ` of a Unix time (days to civil date: H. Hinnant's algorithm).
pub(crate) fn utc_stamp(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_relative_name_has_the_current_directory_as_parent() {
        // `strata restore --data-dir r2` failed at the swap: the parent of `r2` is "".
        let s = Siblings::of(Path::new("r2")).unwrap();
        assert_eq!(s.parent(), Path::new("."));
        assert_eq!(s.target(), Path::new("./r2"));
        let s = Siblings::of(Path::new("a/r2/")).unwrap();
        assert_eq!((s.parent(), s.name()), (Path::new("a"), "r2"));
        assert!(Siblings::of(Path::new("/")).is_none());
        assert!(Siblings::of(Path::new(".")).is_none());
        assert!(Siblings::of(Path::new("a/..")).is_none());
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_798_761_599), "20261231T235959Z");
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name(".r2.restore-abc"));
        for bad in ["", ".", "..", "a/b", "/etc", "a\\b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
