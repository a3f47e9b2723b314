//! Loading the configuration: built-in defaults, then the TOML file, then `SESSIOND_*`
//! environment variables, then flags. Errors name the offending key and its source.

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use sessiond_server::Config;

use crate::cli::GlobalArgs;

pub fn load(args: &GlobalArgs) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &args.config {
        anyhow::ensure!(
            path.is_file(),
            "configuration file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("SESSIOND_").ignore(&["CONFIG"]).split("__"));
    if let Some(bind) = args.bind {
        figment = figment.merge(Serialized::default("bind", bind));
    }
    if let Some(dir) = &args.data_dir {
        figment = figment.merge(Serialized::default("data_dir", dir));
    }
    if let Some(url) = &args.database_url {
        figment = figment.merge(Serialized::default("database_url", url));
    }
    let config: Config = figment
        .extract()
        .map_err(describe)
        .context("invalid configuration")?;
    config.validate()?;
    Ok(config)
}

/// Figment's errors know the key and where the value came from; say both.
fn describe(error: figment::Error) -> anyhow::Error {
    let messages: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(top level)".to_owned()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (from {} {src})", m.name),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            format!("`{key}`{source}: {}", e.kind)
        })
        .collect();
    anyhow::anyhow!(messages.join("; "))
}
