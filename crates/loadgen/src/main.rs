//! `tidings-loadgen`: runs benchmark scenarios against a real `tidings` server (one it
//! starts itself from the same target directory, or one you name with `--url`) and
//! writes each result as JSON under `bench-results/`. The embedded feed scenarios
//! (`feed fanout`, `feed memory`) run the server's own feed code in this process.

mod measure;
mod scenarios;
mod server;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

// The feed scenarios run the server's own feed code in this process; measure it on
// the server's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tidings-loadgen", about = "Benchmark scenarios for Tidings")]
struct Cli {
    /// Where JSON results are written.
    #[arg(long, default_value = "bench-results", global = true)]
    out: PathBuf,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Authenticated `GET /v1/me`: peak requests/s, then latency at fixed offered rates.
    Me(scenarios::me::Args),
    /// Push notifications end to end against a fake APNs, beside the fake's raw ceiling.
    Push(scenarios::push::Args),
    /// The embedded store's durable write path: group commit against one commit per write.
    StoreWrite(scenarios::store_write::Args),
    /// Chat over the WebSocket: idle connections, one-to-one messages, group fan-out.
    Chat(scenarios::chat::Args),
    /// The bare WebSocket broadcast server that `chat fan-out` measures as its ceiling;
    /// started by that scenario as a child process.
    #[command(hide = true)]
    RawBroadcastServer(scenarios::chat::raw_server::Args),
    /// News feed: fan-out into the embedded cache beside a Redis baseline (`fanout`),
    /// memory per cached entry (`memory`), hydrated reads over HTTP (`reads`).
    Feed(scenarios::feed::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (name, result) = match cli.scenario {
        Scenario::Chat(args) => {
            let (name, result) = scenarios::chat::run(args).await?;
            (name.to_owned(), result)
        }
        Scenario::RawBroadcastServer(args) => {
            return scenarios::chat::raw_server::serve(args).await
        }
        Scenario::Me(args) => ("me".to_owned(), scenarios::me::run(args).await?),
        Scenario::Push(args) => ("push".to_owned(), scenarios::push::run(args).await?),
        Scenario::StoreWrite(args) => (
            "store_write".to_owned(),
            scenarios::store_write::run(args).await?,
        ),
        Scenario::Feed(args) => match scenarios::feed::run(args).await? {
            scenarios::feed::Outcome::Result(name, result) => (name, result),
            scenarios::feed::Outcome::Probe(result) => {
                println!("{result}");
                return Ok(());
            }
        },
    };
    std::fs::create_dir_all(&cli.out)?;
    let path = cli.out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!("wrote {}", path.display());
    Ok(())
}
