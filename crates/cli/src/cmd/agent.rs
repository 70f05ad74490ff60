//! `strata agent`: hold unlocked repository keys in memory for the commands that follow
//! (ssh-agent style; logic in `strata_backup::agent`). `strata agent` runs the agent in the
//! foreground; `add`, `list`, `remove` and `stop` talk to it. Commands that unlock a
//! repository ask the agent named by `STRATA_AGENT_SOCK` (or `--agent`) first.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use strata_backup::agent::{self, client, server::Agent};

use super::repo::{RepoArgs, runtime};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/strata-agent.sock, else
    /// strata-agent-UID/agent.sock in the temporary directory]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// How long an added key is held unless `add --lifetime` says otherwise, e.g. 30m, 8h
    #[arg(long, default_value = "1h")]
    lifetime: String,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Unlock a repository with its password once and hand its key to the agent
    Add(AddArgs),
    /// List the keys the agent holds (never the keys themselves)
    List(ClientArgs),
    /// Forget the keys of a repository
    Remove(RemoveArgs),
    /// Stop the agent (every key is forgotten)
    Stop(ClientArgs),
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The agent's socket [default: $STRATA_AGENT_SOCK, else the agent's default socket]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AddArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The agent's socket [default: $STRATA_AGENT_SOCK, else the agent's default socket]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// How long the agent holds this key [default: the agent's --lifetime]
    #[arg(long)]
    lifetime: Option<String>,
}

#[derive(clap::Args)]
struct RemoveArgs {
    /// The repository, as given to `add` (its URL), or its id
    #[arg(long)]
    repo: String,
    /// The agent's socket [default: $STRATA_AGENT_SOCK, else the agent's default socket]
    #[arg(long)]
    socket: Option<PathBuf>,
}

fn socket(explicit: Option<PathBuf>) -> PathBuf {
    agent::socket_from(explicit.as_deref()).unwrap_or_else(agent::default_socket)
}

fn lifetime(s: &str) -> anyhow::Result<Duration> {
    let d = strata_engine::duration::parse(s)
        .ok()
        .with_context(|| format!("--lifetime '{s}': expected a duration such as 30m or 8h"))?;
    if d.is_zero() {
        bail!("--lifetime '{s}': must be longer than zero");
    }
    Ok(d)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        None => serve(a.run),
        Some(Command::Add(a)) => add(a),
        Some(Command::List(a)) => list(a),
        Some(Command::Remove(a)) => {
            let n = client::remove(&socket(a.socket), &a.repo)?;
            println!("removed {n} key(s)");
            Ok(())
        }
        Some(Command::Stop(a)) => {
            let s = socket(a.socket);
            client::stop(&s)?;
            println!("stopped the agent at {}", s.display());
            Ok(())
        }
    }
}

fn serve(a: RunArgs) -> anyhow::Result<()> {
    let lifetime = lifetime(&a.lifetime)?;
    let path = a.socket.unwrap_or_else(agent::default_socket);
    let notes = Agent::harden();
    let agent = Agent::bind(&path, lifetime)?;
    let stop = agent.stop_handle();
    // Ctrl-C and SIGTERM forget the keys and remove the socket, like `strata agent stop`.
    std::thread::Builder::new()
        .name("strata-agent-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            stop.stop();
        })
        .context("cannot watch for signals")?;
    for n in notes {
        eprintln!("note: {n}");
    }
    // Written whole and unchecked: a reader that takes the first line and closes the pipe
    // must not end the agent (a failed `print!` would).
    let banner = format!(
        "strata agent listening on {} (keys held for {} unless added with --lifetime)\nexport {}={}\n",
        path.display(),
        a.lifetime,
        agent::SOCKET_ENV,
        path.display()
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    agent.serve()?;
    Ok(())
}

fn add(a: AddArgs) -> anyhow::Result<()> {
    let sock = socket(a.socket.clone());
    let lifetime = a.lifetime.as_deref().map(lifetime).transpose()?;
    // Check the agent answers before paying for the key derivation.
    client::list(&sock)?;
    // Unlocked with the password (an agent named in the environment is not asked).
    let settings = a.repo.settings();
    let (repo, grant) = runtime()?.block_on(async {
        let store = strata_backup::store::open(&settings.url, &settings.store_options()?, false)?;
        let password = settings.password()?;
        let how = strata_backup::repo::Unlock {
            password: password.as_deref(),
            agent: None,
        };
        strata_backup::Repository::open_with(store, &settings.url, how).await
    })?;
    let Some(grant) = grant else {
        bail!(
            "repository {} is not encrypted: there is no key to hold",
            a.repo.repo
        );
    };
    client::add(&sock, grant, &a.repo.repo, lifetime)?;
    println!(
        "added the key of repository {} ({}) to the agent at {}",
        repo.config().id,
        a.repo.repo,
        sock.display()
    );
    Ok(())
}

fn list(a: ClientArgs) -> anyhow::Result<()> {
    let keys = client::list(&socket(a.socket))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        println!("the agent holds no keys");
    }
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    for k in keys {
        println!(
            "{}  {}  {}  expires in {}s",
            k.repo_id,
            k.key_file,
            k.url,
            k.expires.saturating_sub(now)
        );
    }
    Ok(())
}
