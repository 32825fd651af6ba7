//! The `gatehouse` command line: serve (the default), migrate, and the offline tools.

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseUrl, DEFAULT_DATABASE_URL};
use crate::startup::{Application, ServerSettings};
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Self-hosted feature flags: release stages, targeting, and a Reflag- and \
             OpenFeature-compatible evaluation API.",
    after_help = "Without a command, `gatehouse` serves. Options can also be set through the \
                  environment variables shown in brackets."
)]
pub struct Cli {
    /// Database to use: sqlite://PATH (created on first start) or
    /// postgres://USER[:PASSWORD]@HOST:PORT/DB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "GATEHOUSE_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub addr: String,

    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, seed the defaults and serve the admin UI and the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Runs the parsed command. `Err` carries the one line printed before exiting with status 1.
pub async fn run(cli: Cli) -> Result<(), String> {
    init_logging(cli.log_format);
    let database_url = DatabaseUrl::parse(&cli.database_url).map_err(|e| e.to_string())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(database_url, cli.addr).await,
        Command::Migrate => {
            let store = Store::connect(&database_url)
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            store.close().await;
            println!("database {database_url} is up to date");
            Ok(())
        }
    }
}

async fn serve(database_url: DatabaseUrl, addr: String) -> Result<(), String> {
    let app = Application::build(ServerSettings {
        database_url: database_url.clone(),
        addr,
    })
    .await
    .map_err(|e| e.to_string())?;
    let url = format!("http://{}", app.local_addr());
    tracing::info!(%url, database = %database_url, "Gatehouse is listening");
    app.run_until(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("Gatehouse stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
