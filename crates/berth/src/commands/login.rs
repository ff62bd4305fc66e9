//! `berth login`, `berth logout`: credentials in Docker's config.json.

use std::io::{IsTerminal, Read};

use anyhow::Context;
use berth_image::auth::{self, Credentials};
use berth_image::reference::DEFAULT_REGISTRY;
use berth_image::registry;

use crate::cli::{LoginArgs, LogoutArgs};
use crate::config::Settings;

/// `SERVER` or Docker Hub, as a registry host.
fn registry_of(server: Option<&str>) -> String {
    server.map_or_else(|| DEFAULT_REGISTRY.to_owned(), auth::normalize_registry)
}

pub async fn login(settings: &Settings, args: &LoginArgs) -> anyhow::Result<()> {
    let registry = registry_of(args.server.as_deref());
    let creds = credentials(args)?;
    verify(settings, &registry, &creds).await?;
    let path = settings
        .registry
        .docker_config
        .clone()
        .unwrap_or_else(auth::default_config_path);
    auth::store(&path, &registry, &creds)?;
    println!(
        "WARNING! Your password will be stored unencrypted in {}.",
        path.display()
    );
    println!();
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(settings: &Settings, args: &LogoutArgs) -> anyhow::Result<()> {
    let registry = registry_of(args.server.as_deref());
    let path = settings
        .registry
        .docker_config
        .clone()
        .unwrap_or_else(auth::default_config_path);
    let shown = args
        .server
        .clone()
        .unwrap_or_else(|| auth::DOCKER_HUB_KEY.to_owned());
    if auth::erase(&path, &registry)? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(())
}

/// `-u`/`-p`/`--password-stdin`, prompting on a terminal for what is missing.
fn credentials(args: &LoginArgs) -> anyhow::Result<Credentials> {
    if args.password.is_some() && args.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let terminal = console::Term::stderr();
    let interactive = std::io::stdin().is_terminal();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if interactive && !args.password_stdin => {
            eprint!("Username: ");
            terminal
                .read_line()
                .context("reading the username")?
                .trim()
                .to_owned()
        }
        None => anyhow::bail!("Cannot perform an interactive login from a non TTY device"),
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if interactive {
        eprint!("Password: ");
        terminal
            .read_secure_line()
            .context("reading the password")?
    } else {
        anyhow::bail!("Cannot perform an interactive login from a non TTY device");
    };
    if username.is_empty() {
        anyhow::bail!("Username is required");
    }
    if password.is_empty() {
        anyhow::bail!("Password is required");
    }
    Ok(Credentials::basic(&username, &password))
}

/// Check the credentials against the registry before storing them.
async fn verify(settings: &Settings, registry: &str, creds: &Credentials) -> anyhow::Result<()> {
    let client = registry::Client::new(settings.registry.clone())?;
    client.check_login(registry, creds).await?;
    Ok(())
}
