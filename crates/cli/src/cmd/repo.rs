//! `strata repo ...`.

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
}

#[derive(clap::Args)]
pub struct InitArgs {}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init(_) => anyhow::bail!("strata repo init is not implemented yet"),
    }
}
