//! Strata backup repository and the backup, verify, restore and prune procedures.
