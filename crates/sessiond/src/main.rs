//! The `sessiond` binary: parse, build, run. Everything else lives in the library crates.

mod cli;
mod json_fields;
mod settings;
mod telemetry;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sessiond_core::SystemClock;
use sessiond_server::{App, Config, open_store};

use crate::cli::{Cli, Command, ConfigCommand, KeysCommand};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = settings::load(&cli.global)?;
    telemetry::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.migrate().await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Keys { command } => keys(command, config).await,
        Command::Config { command } => match command {
            None => {
                print!("{}", toml::to_string(&config.masked())?);
                Ok(())
            }
            Some(ConfigCommand::Check) => {
                println!("configuration is valid");
                Ok(())
            }
        },
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config, Arc::new(SystemClock)).await?;
    app.run(shutdown_signal()).await?;
    Ok(())
}

async fn keys(command: KeysCommand, config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    match command {
        KeysCommand::List => {
            let keys = store.signing_keys().await?;
            if keys.is_empty() {
                println!("no signing keys yet: `sessiond serve` creates one on first start");
            }
            let window =
                sessiond_server::state::keys::verification_window(config.policy().access_token_ttl);
            for key in keys {
                let status = match key.retired_at {
                    _ if key.created_at > now => {
                        format!(
                            "next: published, signs from {}",
                            key.created_at.to_rfc3339()
                        )
                    }
                    None => "active".to_owned(),
                    Some(at) if at > now => format!("active until {}", at.to_rfc3339()),
                    Some(at) if at + window > now => {
                        format!("retired {} (still verifying)", at.to_rfc3339())
                    }
                    Some(at) => format!("retired {}", at.to_rfc3339()),
                };
                println!(
                    "{}  EdDSA  created {}  {status}",
                    key.kid,
                    key.created_at.to_rfc3339()
                );
            }
        }
        KeysCommand::Rotate { now: at_once } => {
            let signs_from = if at_once {
                now
            } else {
                now + sessiond_server::state::keys::PUBLISH_LEAD
            };
            let webhooks =
                sessiond_server::infra::webhooks::Webhooks::new(&config.webhooks, |var| {
                    std::env::var(var).ok()
                })?;
            let outbox = sessiond_server::service::events::Outbox::new(
                std::sync::Arc::new(webhooks),
                config.record_refresh_events,
            );
            outbox.set_disabled(&store.disabled_endpoints().await?);
            let key = sessiond_server::state::keys::rotate(
                store.as_ref(),
                now,
                signs_from,
                config.policy().access_token_ttl,
                &outbox,
            )
            .await?;
            println!(
                "new signing key {}; published now, signing from {} (running instances switch \
                 within a minute of that); previous keys keep verifying until their tokens have \
                 expired.",
                key.kid,
                signs_from.to_rfc3339()
            );
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
