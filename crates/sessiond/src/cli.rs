use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sessiond: a self-hostable session and token server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings that every command reads; they override the file and the environment.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, global = true)]
    pub bind: Option<SocketAddr>,
    /// Folder for the SQLite database, the admin key and the outbox.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` or `sqlite:…`; SQLite in the data folder when absent.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect or rotate the token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the effective configuration (secrets masked).
    Config {
        #[command(subcommand)]
        command: Option<ConfigCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state.
    List,
    /// Publish a new key, which becomes the signing key two minutes later (every instance
    /// and every verifier's JWKS knows it by then); old keys keep verifying until their
    /// tokens expire.
    Rotate {
        /// Sign with the new key at once (a compromised key): verifiers learn the new key
        /// from the feed's `keys_changed` or the unknown `kid`.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (`--config FILE` plus environment) and exit.
    Check,
}
