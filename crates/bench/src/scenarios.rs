//! Which scenario families a run measures (`--scenarios`). A family names one or more report
//! rows; the families a selected one builds on run too (ingest under everything that needs the
//! data, the full backup under restore and the backups that follow it) and report their
//! figures as well, since they were measured the same way.

use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// `ingest`, `disk`, `disk_at_rest`
    Ingest,
    /// `query_*` on the live server
    Queries,
    /// `backup_full_enc_on`, `backup_full_enc_off`
    Backup,
    /// `backup_nothing_new`
    NothingNew,
    /// `backup_incremental_1pct`
    Incremental,
    /// `restore`
    Restore,
    /// `query_repo_local_*`, `query_repo_s3_*`: the benchmark queries on the full backup
    /// without restoring it
    QueryRepo,
    /// `query_repo_one_group_of_ten_*`: one group of a ten-group backup
    QueryRepoGroups,
    /// `write_p99_during_backup`
    WriteP99,
    /// `memory_10x`
    Memory10x,
    /// `backup_nothing_new_1000_parts`
    NothingNewParts,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Ingest,
        Family::Queries,
        Family::Backup,
        Family::NothingNew,
        Family::Incremental,
        Family::Restore,
        Family::QueryRepo,
        Family::QueryRepoGroups,
        Family::WriteP99,
        Family::Memory10x,
        Family::NothingNewParts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Ingest => "ingest",
            Family::Queries => "queries",
            Family::Backup => "backup",
            Family::NothingNew => "nothing_new",
            Family::Incremental => "incremental",
            Family::Restore => "restore",
            Family::QueryRepo => "query_repo",
            Family::QueryRepoGroups => "query_repo_groups",
            Family::WriteP99 => "write_p99",
            Family::Memory10x => "memory_10x",
            Family::NothingNewParts => "nothing_new_parts",
        }
    }

    /// The families this one cannot run without.
    fn needs(self) -> &'static [Family] {
        match self {
            Family::Ingest | Family::NothingNewParts | Family::QueryRepoGroups => &[],
            Family::Queries | Family::Backup | Family::WriteP99 => &[Family::Ingest],
            // The full (encrypted) backup is what they compare with or restore.
            Family::NothingNew | Family::Incremental | Family::Restore | Family::QueryRepo => {
                &[Family::Backup]
            }
            // Compares with the 1× backup and restore figures.
            Family::Memory10x => &[Family::Restore],
        }
    }
}

/// The families that run: those asked for and everything they build on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// What `--scenarios` named (every family by default).
    asked: BTreeSet<Family>,
    /// `asked` and everything it builds on.
    run: BTreeSet<Family>,
    /// Whether `--scenarios` named families (rather than the default: all).
    explicit: bool,
}

impl Selection {
    /// Every family (the default without `--scenarios`).
    pub fn all() -> Self {
        let every: BTreeSet<Family> = Family::ALL.into_iter().collect();
        Selection {
            asked: every.clone(),
            run: every,
            explicit: false,
        }
    }

    /// Parses `--scenarios` names (`all` selects every family). An unknown name is one line
    /// of error listing the valid ones.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut run = BTreeSet::new();
        for n in names {
            let n = n.as_ref().trim();
            if n.is_empty() {
                continue;
            }
            if n == "all" {
                return Ok(Self::all());
            }
            let f = Family::ALL
                .into_iter()
                .find(|f| f.name() == n)
                .ok_or_else(|| {
                    let valid: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
                    format!(
                        "--scenarios: unknown scenario family '{n}' (valid: all, {})",
                        valid.join(", ")
                    )
                })?;
            run.insert(f);
        }
        if run.is_empty() {
            return Err("--scenarios: no scenario family given".into());
        }
        let asked = run.clone();
        let mut todo: Vec<Family> = run.iter().copied().collect();
        while let Some(f) = todo.pop() {
            for d in f.needs() {
                if run.insert(*d) {
                    todo.push(*d);
                }
            }
        }
        Ok(Selection {
            asked,
            run,
            explicit: true,
        })
    }

    /// Whether the family runs (asked for, or needed by one that was).
    pub fn runs(&self, f: Family) -> bool {
        self.run.contains(&f)
    }

    /// Whether the family was asked for rather than only needed: what a family does beyond
    /// what others need of it (the unencrypted full backup) runs only then.
    pub fn asked(&self, f: Family) -> bool {
        self.asked.contains(&f)
    }

    /// Whether the family was named on the command line (the default selection names none):
    /// `memory_10x` runs by default only with `--memory-10x`, but always when named.
    pub fn named(&self, f: Family) -> bool {
        self.explicit && self.asked(f)
    }

    /// Whether the per-system pipeline (a server fed the base data) has anything to do.
    pub fn needs_pipeline(&self) -> bool {
        self.runs(Family::Ingest)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.run.iter().map(|f| f.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dependencies_and_errors() {
        let all = Selection::all();
        assert!(Family::ALL.iter().all(|f| all.runs(*f)));
        assert!(!all.named(Family::Memory10x));
        assert_eq!(Selection::parse(&["all"]), Ok(Selection::all()));

        let s = Selection::parse(&["restore"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.names(), ["ingest", "backup", "restore"]);
        assert!(s.needs_pipeline());
        assert!(s.runs(Family::Backup) && !s.asked(Family::Backup));
        assert!(s.asked(Family::Restore) && !s.named(Family::Memory10x));

        let s = Selection::parse(&["memory_10x", "query_repo_groups"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.names(),
            [
                "ingest",
                "backup",
                "restore",
                "query_repo_groups",
                "memory_10x"
            ]
        );
        assert!(s.named(Family::Memory10x));

        let s = Selection::parse(&["nothing_new_parts"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.needs_pipeline());
        assert_eq!(s.names(), ["nothing_new_parts"]);

        let e = Selection::parse(&["queries", "restor"])
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown scenario family 'restor'"), "{e}");
        assert!(e.contains("valid: all, ingest, queries, backup"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(Selection::parse::<&str>(&[]).is_err());
    }
}
