//! `strata`: one binary for the server and every backup and restore command.
//! Each subcommand lives in `cmd/<name>.rs` with its own clap arguments; this file only
//! dispatches and turns errors into a one-line message and a non-zero exit code.

use clap::{Parser, Subcommand};

mod cmd;
mod epipe;
mod report;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: a time-series database with first-class backup and recovery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Strata server
    Server(cmd::server::Args),
    /// Run a JSON query against a server, a data directory or a backup snapshot
    Query(cmd::query::Args),
    /// Manage a backup repository
    #[command(subcommand)]
    Repo(cmd::repo::Command),
    /// Back up a data directory or a running server into a repository
    Backup(cmd::backup::Args),
    /// List the snapshots in a repository
    Snapshots(cmd::snapshots::Args),
    /// Show one snapshot
    Show(cmd::show::Args),
    /// Compare two snapshots
    Diff(cmd::diff::Args),
    /// Verify snapshots and repository objects
    Verify(cmd::verify::Args),
    /// Restore a snapshot into a data directory
    Restore(cmd::restore::Args),
    /// Remove snapshots by retention policy and free unreferenced objects
    Prune(cmd::prune::Args),
    /// Copy snapshots to another repository (incremental, verified)
    Copy(cmd::copy::Args),
    /// Restore drill: restore a snapshot into scratch, check it against its manifest, remove it
    Drill(cmd::drill::Args),
    /// Pin a snapshot: retention never removes it
    Pin(cmd::pin::PinArgs),
    /// Unpin a snapshot
    Unpin(cmd::pin::UnpinArgs),
    /// Remove one snapshot (its data goes at the next prune)
    Forget(cmd::pin::ForgetArgs),
    /// Check every file of a data directory or snapshot without opening it for writing
    Check(cmd::check::Args),
    /// Hold unlocked repository keys in memory for the commands that follow (add, list, remove, stop)
    Agent(cmd::agent::Args),
}

fn main() {
    epipe::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    init_logging(matches!(
        cli.command,
        Command::Server(_) | Command::Agent(_)
    ));
    let result = match cli.command {
        Command::Server(a) => cmd::server::run(a),
        Command::Query(a) => cmd::query::run(a),
        Command::Repo(c) => cmd::repo::run(c),
        Command::Backup(a) => cmd::backup::run(a),
        Command::Snapshots(a) => cmd::snapshots::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Verify(a) => cmd::verify::run(a),
        Command::Restore(a) => cmd::restore::run(a),
        Command::Prune(a) => cmd::prune::run(a),
        Command::Copy(a) => cmd::copy::run(a),
        Command::Drill(a) => cmd::drill::run(a),
        Command::Pin(a) => cmd::pin::pin(a),
        Command::Unpin(a) => cmd::pin::unpin(a),
        Command::Forget(a) => cmd::pin::forget(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Agent(a) => cmd::agent::run(a),
    };
    if let Err(e) = result {
        if epipe::is_broken_pipe(&e) {
            std::process::exit(0);
        }
        eprintln!("error: {}", report::one_line(&e));
        std::process::exit(1);
    }
}

/// Logs go to stderr (stdout is for results). `STRATA_LOG` takes an `EnvFilter` directive;
/// the server logs at info by default, one-shot commands only warnings.
/// `STRATA_LOG_FORMAT=json` switches to JSON lines.
fn init_logging(server: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if std::env::var("STRATA_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("warning: logging not initialised: {e}");
    }
}
