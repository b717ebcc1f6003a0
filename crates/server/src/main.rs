//! The `tidings` command line. `anyhow` lives here, at the binary's edge only.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tidings_platform::clock::rfc3339;
use tidings_platform::config::{Config, Overrides};
use tidings_server::{build_state, Server};

// glibc's malloc showed up as a sixth of the server's profile under load (arena
// contention between the runtime's threads); mimalloc keeps per-thread heaps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tidings",
    version,
    about = "Notifications, news feeds and chat for your app: one self-hosted server."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "TIDINGS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded store (default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Listen address (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Create an app and print {"app_id", "app_key", "app_secret"} once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List apps (without secrets).
    List,
}

fn load(args: &ConfigArgs, listen: Option<String>) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen,
        data_dir: args.data_dir.clone(),
    };
    let (config, warnings) = Config::load(args.config.as_deref(), std::env::vars(), &overrides)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDINGS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal; logs piped to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
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
    tracing::info!("shutdown requested: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => {
            let config = load(&config, listen)?;
            init_tracing(config.log_format == "json");
            let server = Server::build(config).await.context("starting the server")?;
            if let Some(creds) = server.first_app() {
                // Printed once, on stdout, so it can be captured; the secret is not
                // stored and cannot be shown again.
                println!("{}", serde_json::to_string(creds)?);
                tracing::warn!(app_id = %creds.app_id, app_key = %creds.app_key,
                    "created the first app; its secret is printed above on stdout and will not be shown again");
            }
            tracing::info!(addr = %server.local_addr(), backend = server.backend(), "tidings listening");
            server.run_until(shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::App { command, config } => {
            let config = load(&config, None)?;
            init_tracing(config.log_format == "json");
            let (state, _) = build_state(config).await.context("opening the store")?;
            match command {
                AppCommand::Create { name } => {
                    let creds = state.accounts.create_app(&name).await?;
                    println!("{}", serde_json::to_string(&creds)?);
                }
                AppCommand::List => {
                    for app in state.accounts.list_apps().await? {
                        println!(
                            "{}",
                            serde_json::json!({
                                "app_id": app.id,
                                "name": app.name,
                                "app_key": app.key,
                                "created_at": rfc3339(app.created_at_ms),
                            })
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
