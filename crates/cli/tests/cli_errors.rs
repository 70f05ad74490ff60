//! Error lines of the real binary: one line, each cause once, no parser internals.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn strata(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_a_file = file.join("repo");
    let (code, err) = strata(&[
        "repo",
        "init",
        "--repo",
        under_a_file.to_str().unwrap(),
        "--encryption",
        "none",
    ]);
    assert_ne!(code, 0);
    assert_one_line(&err);
    assert_eq!(err.matches("os error 20").count(), 1, "{err}");
}

#[test]
fn a_bad_config_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nfsync = = \"always\"\n").unwrap();
    let data = dir.path().join("data");
    let (code, err) = strata(&[
        "server",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert_one_line(&err);
    assert_eq!(err.matches("bad config file").count(), 1, "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(!data.exists(), "a bad config changed nothing");
}

#[test]
fn a_bad_duration_names_the_option_without_parser_internals() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let (code, err) = strata(&[
        "prune",
        "--repo",
        repo.to_str().unwrap(),
        "--keep-within",
        "soon",
    ]);
    assert_ne!(code, 0);
    assert_one_line(&err);
    assert_eq!(
        err.trim_end(),
        "error: --keep-within: 'soon' is not a duration: expected a number and a unit such as \
         250ms, 30s, 15m, 36h, 7d or 2w"
    );
    assert!(!repo.exists());
}
