//! The `gatehouse` command line: serve (the default), migrate, and the offline tools.

/// `println!` for what a command prints. A closed pipe (`gatehouse keys list | head -1`) ends the
/// command quietly, as other command-line tools do, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let written = writeln!(std::io::stdout(), $($arg)*);
        finish_on_closed_output(written);
    }};
}

/// `print!` with [`out!`]'s handling of a closed pipe.
macro_rules! out_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let written = write!(std::io::stdout(), $($arg)*);
        finish_on_closed_output(written);
    }};
}

/// Ends the process when standard output is gone: quietly when the reader closed it (a pipe), with
/// the reason otherwise.
fn finish_on_closed_output(written: std::io::Result<()>) {
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("error: cannot write the output: {error}");
            std::process::exit(1);
        }
    }
}

use clap::{Parser, Subcommand, ValueEnum};

use std::io::BufRead;

use crate::auth::session::SessionSettings;
use crate::cli_target::{service_message, FlagLine, ImportError, Remote, Target};
use crate::config::{DatabaseUrl, DEFAULT_DATABASE_URL};
use crate::model::member::Role;
use crate::service::{config_file, Actor, Change, Clock, IngestLimits, NewTokenRequest, Outcome, Service};
use crate::startup::{Application, ServerSettings};

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

    /// Work on a running Gatehouse server instead of the database: `export`, `import`, `types`,
    /// `flags` and `access` go through its management API with the access token in
    /// GATEHOUSE_TOKEN (`gatehouse tokens create`), acting with the token's role.
    #[arg(long, env = "GATEHOUSE_SERVER", global = true)]
    pub server: Option<String>,

    /// Address the HTTP server listens on.
    #[arg(long, env = "GATEHOUSE_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub addr: String,

    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    /// The URL members reach this server at (for setup and invitation links, and to decide
    /// whether cookies need HTTPS). Default: http://<addr>.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Send the session cookie over HTTPS only. Default: on when the public URL is https.
    #[arg(long, env = "GATEHOUSE_COOKIE_SECURE", global = true)]
    pub cookie_secure: Option<bool>,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_MINUTES", default_value_t = 720, global = true,
          value_parser = clap::value_parser!(i64).range(1..=525_600))]
    pub session_idle_minutes: i64,

    /// Reverse proxies (CIDR ranges or addresses, comma-separated) whose `X-Forwarded-For` names
    /// the client; without it the peer's address is the client's.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", global = true, default_value = "")]
    pub trusted_proxies: String,

    /// Count flag checks and the companies and users exposed (the Usage section, stale flags).
    #[arg(long, env = "GATEHOUSE_COUNT_USAGE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub count_usage: bool,

    /// Most live-update streams (`/sse/server`, `/sse/client`, OFREP events) open per API key.
    #[arg(long, env = "GATEHOUSE_MAX_STREAMS_PER_KEY", global = true,
          default_value_t = crate::startup::DEFAULT_STREAMS_PER_KEY)]
    pub max_streams_per_key: usize,

    /// Most live-update streams open per client address.
    #[arg(long, env = "GATEHOUSE_MAX_STREAMS_PER_ADDRESS", global = true,
          default_value_t = crate::startup::DEFAULT_STREAMS_PER_ADDRESS)]
    pub max_streams_per_address: usize,

    /// Most live-update streams open in all.
    #[arg(long, env = "GATEHOUSE_MAX_STREAMS", global = true,
          default_value_t = crate::startup::DEFAULT_STREAMS_TOTAL)]
    pub max_streams: usize,

    /// Most companies, and most users, stored per environment; ingest reports that would add
    /// more are refused (422 `ENTITY_LIMIT_REACHED`).
    #[arg(long, env = "GATEHOUSE_MAX_ENTITIES", global = true,
          default_value_t = IngestLimits::default().entities)]
    pub max_entities: usize,

    /// Most attributes a company or user keeps once a report is merged into what is stored
    /// (422 `ENTITY_TOO_LARGE` beyond).
    #[arg(long, env = "GATEHOUSE_MAX_ENTITY_ATTRIBUTES", global = true,
          default_value_t = IngestLimits::default().attributes)]
    pub max_entity_attributes: usize,

    /// Largest a company's or user's merged attributes may be, in bytes of JSON.
    #[arg(long, env = "GATEHOUSE_MAX_ENTITY_BYTES", global = true,
          default_value_t = IngestLimits::default().bytes)]
    pub max_entity_bytes: usize,

    /// Most ingest requests being written or waiting to be written; one more is refused with
    /// 429 and `Retry-After`.
    #[arg(long, env = "GATEHOUSE_INGEST_QUEUE", global = true,
          default_value_t = IngestLimits::default().queue as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ingest_queue: u32,

    /// Ingest requests per second per API key (a bucket of as many; 0: no limit).
    #[arg(long, env = "GATEHOUSE_INGEST_RATE_PER_KEY", global = true,
          default_value_t = crate::startup::DEFAULT_INGEST_RATE_PER_KEY)]
    pub ingest_rate_per_key: u32,

    /// Ingest requests per second per client address (IPv6: per /64; 0: no limit).
    #[arg(long, env = "GATEHOUSE_INGEST_RATE_PER_ADDRESS", global = true,
          default_value_t = crate::startup::DEFAULT_INGEST_RATE_PER_ADDRESS)]
    pub ingest_rate_per_address: u32,

    /// Bearer token that `GET /metrics` asks for (unset: metrics are open to anyone who can reach
    /// the server; they name environments and count entities).
    #[arg(long, env = "GATEHOUSE_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// E-mail of a first admin to create when no member exists (with GATEHOUSE_ADMIN_PASSWORD),
    /// for automated deployments.
    #[arg(long, env = "GATEHOUSE_ADMIN_EMAIL", global = true, hide_env_values = true)]
    pub admin_email: Option<String>,

    #[arg(long, env = "GATEHOUSE_ADMIN_PASSWORD", hide = true, hide_env_values = true)]
    pub admin_password: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, seed the defaults and serve the admin UI and the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Manage members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage access tokens of the management API (/api/v1).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Give a company, user or segment access to a flag in one environment, or take it away
    /// (through the same change pipeline, validation and audit log as the admin UI).
    #[command(subcommand)]
    Access(AccessCommand),
    /// List, create and move flags between release stages.
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// Evaluate rules offline, as Reflag's evaluateFlagRules does. Reads JSON lines
    /// {"flagKey", "rules": [{"filter", "value"}], "context"} and writes one result line per input
    /// (flagKey, value, reason, context, ruleEvaluationResults, missingContextFields). A malformed
    /// line gives {"line": N, "error": ".."}; the exit code is 1 if any line failed.
    Evaluate {
        /// Read from this file instead of standard input.
        #[arg(long)]
        input: Option<std::path::PathBuf>,
        /// Fix the clock for AFTER/BEFORE conditions (RFC 3339, e.g. 2024-01-10T00:00:00Z).
        #[arg(long)]
        now: Option<String>,
    },
    /// Write the whole configuration (environments, release stages, segments, flags with their
    /// access rules and remote config) as one JSON document, format "gatehouse/1".
    Export {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Write the flag keys and remote-config payload types for an application's type checker:
    /// TypeScript augmenting the Reflag SDK's `Flags` interface (a typo in a flag key then fails
    /// to compile), or Rust (an enum of keys and serde types for the payloads).
    Types {
        #[arg(long, value_enum, default_value = "typescript")]
        lang: TypesLang,
        /// The SDK whose `Flags` interface the TypeScript augments.
        #[arg(long, value_enum, default_value = "node")]
        sdk: TypesSdk,
        /// Write to this file (its directory is created) instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Find where a source tree mentions each flag key (as a whole word, in any language,
    /// respecting .gitignore): prints file:line per flag, then the flags found nowhere. Exits 0.
    CodeRefs {
        /// The tree to scan.
        #[arg(default_value = ".")]
        path: std::path::PathBuf,
        /// text, or json (one document: root, filesScanned, flags[{key, references[{file,
        /// line}]}], unreferenced).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A flag's checks per day (enabled, disabled, config variants) and the companies and users
    /// it reached, per environment; without FLAG, every flag's checks and last check. Counts
    /// reach the database from running servers every few seconds.
    Usage {
        flag: Option<String>,
        /// Only this environment (its key).
        #[arg(long)]
        environment: Option<String>,
        /// How many days back, today included.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=400))]
        days: u32,
        /// text, or json (one document; see the README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The temporary flags that are stale (released to everyone in production for a while, or
    /// not checked for a while), with their reasons.
    Stale {
        /// text, or json (one document; see the README).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Make the database match a document written by `gatehouse export`: checks the whole file
    /// first, then applies every change in one transaction. Flags, segments and stages the file
    /// leaves out are kept.
    Import {
        file: std::path::PathBuf,
        /// Print the changes the import would make, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The language `gatehouse types` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TypesLang {
    Typescript,
    Rust,
}

/// The Reflag SDK the TypeScript types are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TypesSdk {
    Node,
    Browser,
    React,
}

/// How a command prints what it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a member; the password is read from standard input (one line).
    Add {
        #[arg(long)]
        email: String,
        /// admin, editor or viewer.
        #[arg(long)]
        role: Role,
        /// Display name (default: the part of the e-mail before @).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required, so it never appears in the process list).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List members.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print each environment's publishable key and its secret keys' prefixes.
    List,
    /// Create a secret key for an environment and print it (once).
    Create {
        /// Environment key, e.g. production.
        #[arg(long)]
        environment: String,
        /// What the key is for, e.g. "Billing service".
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Give an environment a new publishable key and print it; the old one keeps working for
    /// --grace-hours (default 24, 0 stops it at once, at most 168).
    Rotate {
        #[arg(long)]
        environment: String,
        #[arg(long, default_value_t = 24)]
        grace_hours: i64,
    },
    /// Revoke the secret key that starts with PREFIX.
    Revoke { prefix: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a service token and print it alone on the last line (shown once).
    Create {
        /// What the token is for, e.g. "ci".
        #[arg(long)]
        name: String,
        /// The role it acts with: admin, editor or viewer.
        #[arg(long)]
        role: Role,
        /// Days until it expires (default: never).
        #[arg(long = "expires-in")]
        expires_in: Option<i64>,
    },
    /// Print every token: prefix, kind, name, role, member, expiry, status.
    List,
    /// Revoke the token that starts with PREFIX (at once, on every server).
    Revoke { prefix: String },
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Print every flag: key, name, release stage, type (temporary or permanent).
    List {
        /// The archived flags instead.
        #[arg(long)]
        archived: bool,
        /// text, or json (one document: {"flags": [{key, name, stage, type, archived}]}).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Create a flag in the first release stage, off everywhere.
    Create {
        /// Its key, as applications ask for it.
        key: String,
        /// Its name in the admin UI (default: the key).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// A permanent flag (an entitlement, a kill switch) is never stale.
        #[arg(long)]
        permanent: bool,
    },
    /// Move a flag to a release stage, applying the stage's default access where it has some;
    /// prints what changes in each environment.
    MoveStage {
        key: String,
        /// The stage's name (any case) or id.
        #[arg(long)]
        stage: String,
        /// Print what the move would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Give access to FLAG in an environment.
    Grant(AccessTarget),
    /// Take access to FLAG away in an environment.
    Revoke(AccessTarget),
}

/// Whose access to which flag, where: exactly one of --company, --user, --segment.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["company", "user", "segment"])))]
pub struct AccessTarget {
    /// The flag's key.
    pub flag: String,
    /// Environment key, e.g. production.
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub company: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub segment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Runs the parsed command. `Err` carries the one line printed before exiting with status 1.
pub async fn run(cli: Cli) -> Result<(), String> {
    if let Some(Command::Evaluate { input, now }) = &cli.command {
        // Offline: no logging set-up, no database.
        return evaluate(input.as_deref(), now.as_deref());
    }
    init_logging(cli.log_format);
    let database_url = DatabaseUrl::parse(&cli.database_url).map_err(|e| e.to_string())?;
    match cli.command {
        None | Some(Command::Serve) => {
            let secure = cli.cookie_secure.unwrap_or_else(|| {
                cli.public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://"))
            });
            let bootstrap_admin = match (cli.admin_email, cli.admin_password) {
                (Some(email), Some(password)) => Some((email, password)),
                (None, None) => None,
                _ => {
                    return Err(
                        "set both GATEHOUSE_ADMIN_EMAIL and GATEHOUSE_ADMIN_PASSWORD, or neither".into(),
                    )
                }
            };
            let settings = ServerSettings {
                database_url,
                addr: cli.addr,
                public_url: cli.public_url,
                sessions: SessionSettings {
                    secure,
                    idle_minutes: cli.session_idle_minutes,
                },
                bootstrap_admin,
                clock: Clock::system(),
                metrics_token: cli.metrics_token.filter(|t| !t.trim().is_empty()),
                trusted_proxies: crate::auth::client::parse_trusted(&cli.trusted_proxies)
                    .map_err(|e| format!("--trusted-proxies: {e}"))?,
                streams: crate::state::StreamLimits::new(
                    cli.max_streams_per_key,
                    cli.max_streams_per_address,
                    cli.max_streams,
                ),
                ingest: IngestLimits {
                    entities: cli.max_entities,
                    attributes: cli.max_entity_attributes,
                    bytes: cli.max_entity_bytes,
                    queue: cli.ingest_queue as usize,
                },
                ingest_rate_per_key: cli.ingest_rate_per_key,
                ingest_rate_per_address: cli.ingest_rate_per_address,
                scheduler_every: Some(crate::startup::SCHEDULER_EVERY),
                usage_every: Some(crate::service::FLUSH_EVERY),
                webhooks_every: Some(crate::startup::WEBHOOKS_EVERY),
                count_usage: cli.count_usage,
            };
            serve(settings).await
        }
        Some(Command::Migrate) => {
            open(&database_url).await?.close().await;
            out!("database {database_url} is up to date");
            Ok(())
        }
        Some(Command::Evaluate { input, now }) => evaluate(input.as_deref(), now.as_deref()),
        Some(
            command @ (Command::Access(_)
            | Command::Flags(_)
            | Command::Export { .. }
            | Command::Types { .. }
            | Command::Import { .. }),
        ) => {
            let target = match cli.server {
                Some(server) => Target::Remote(Remote::new(&server, std::env::var("GATEHOUSE_TOKEN").ok())?),
                None => Target::Local(open(&database_url).await?),
            };
            let result = match command {
                Command::Access(command) => access_command(&target, command).await,
                Command::Flags(command) => flags_command(&target, command).await,
                Command::Export { output } => export_command(&target, output.as_deref()).await,
                Command::Types { lang, sdk, output } => {
                    types_command(&target, lang, sdk, output.as_deref()).await
                }
                Command::Import { file, dry_run } => import_command(&target, &file, dry_run).await,
                _ => Ok(()),
            };
            target.close().await;
            result
        }
        Some(_) if cli.server.is_some() => Err(
            "--server works for export, import, types, flags and access; the other commands work on the database (--database-url)".into(),
        ),
        Some(command) => {
            let service = open(&database_url).await?;
            let result = match command {
                Command::Member(command) => member_command(&service, command).await,
                Command::Keys(command) => keys_command(&service, command).await,
                Command::Tokens(command) => tokens_command(&service, command).await,
                Command::CodeRefs { path, format } => code_refs_command(&service, &path, format).await,
                Command::Usage {
                    flag,
                    environment,
                    days,
                    format,
                } => usage_command(&service, flag.as_deref(), environment.as_deref(), days, format).await,
                Command::Stale { format } => stale_command(&service, format).await,
                Command::Serve
                | Command::Migrate
                | Command::Evaluate { .. }
                | Command::Access(_)
                | Command::Flags(_)
                | Command::Export { .. }
                | Command::Types { .. }
                | Command::Import { .. } => Ok(()),
            };
            service.close().await;
            result
        }
    }
}

fn evaluate(input: Option<&std::path::Path>, now: Option<&str>) -> Result<(), String> {
    let now_ms = match now {
        Some(text) => {
            let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("--now {text:?} is not an RFC 3339 time: {e}"))?;
            (parsed.unix_timestamp_nanos() / 1_000_000) as i64
        }
        None => Clock::system().now_ms(),
    };
    let stdout = std::io::stdout();
    let output = std::io::BufWriter::new(stdout.lock());
    let any_failed = match input {
        Some(path) => {
            let file =
                std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            crate::eval::cli::run_evaluate(std::io::BufReader::new(file), output, now_ms)
        }
        None => crate::eval::cli::run_evaluate(std::io::stdin().lock(), output, now_ms),
    }
    .map_err(|e| format!("cannot evaluate: {e}"))?;
    if any_failed {
        Err("some input lines could not be evaluated (see the {\"line\", \"error\"} lines)".into())
    } else {
        Ok(())
    }
}

/// Connects, migrates and seeds, so every command works on a fresh database.
async fn open(database_url: &DatabaseUrl) -> Result<Service, String> {
    let (service, _) = Service::open(database_url, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    Ok(service)
}

async fn member_command(service: &Service, command: MemberCommand) -> Result<(), String> {
    match command {
        MemberCommand::Add {
            email,
            role,
            name,
            password_stdin: _,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(|e| format!("cannot read the password: {e}"))?;
            let password = password.trim_end_matches(['\n', '\r']);
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
            let change = Change::AddMember {
                email,
                name,
                role,
                password: password.to_string(),
            };
            let member = service
                .apply(&Actor::cli(), change)
                .await
                .and_then(|outcome| outcome.into_member())
                .map_err(service_message)?;
            out!("added {} ({})", member.email, member.role);
            Ok(())
        }
        MemberCommand::List => {
            for member in service.members(&Actor::cli()).await.map_err(service_message)? {
                out!("{}\t{}\t{}", member.email, member.role, member.name);
            }
            Ok(())
        }
    }
}

async fn keys_command(service: &Service, command: KeysCommand) -> Result<(), String> {
    let actor = Actor::cli();
    match command {
        KeysCommand::List => {
            let (environments, keys) = service.api_keys(&actor).await.map_err(service_message)?;
            for key in keys {
                let environment = environments.iter().find(|e| e.id == key.environment_id);
                let environment = environment.map(|e| e.key.to_string()).unwrap_or_default();
                let works = key.works_at(service.clock().now_ms());
                let shown = key.public_value.unwrap_or_else(|| format!("{}…", key.prefix));
                let status = match (key.revoked_at, works) {
                    (None, _) => "active".to_string(),
                    (Some(at), true) => format!("works until {}", crate::ui::datetime(at)),
                    (Some(_), false) => "revoked".to_string(),
                };
                out!(
                    "{environment}\t{}\t{shown}\t{status}\t{}",
                    key.kind.as_str(),
                    key.name
                );
            }
            Ok(())
        }
        KeysCommand::Rotate {
            environment,
            grace_hours,
        } => {
            let change = Change::RotatePublishableKey {
                environment,
                grace_hours,
            };
            let key = service
                .apply(&actor, change)
                .await
                .and_then(|outcome| outcome.into_secret_key())
                .map_err(service_message)?;
            out!("{key}");
            Ok(())
        }
        KeysCommand::Create { environment, name } => {
            let key = service
                .apply(&actor, Change::CreateSecretKey { environment, name })
                .await
                .and_then(|outcome| outcome.into_secret_key())
                .map_err(service_message)?;
            out!("{key}");
            Ok(())
        }
        KeysCommand::Revoke { prefix } => {
            let change = Change::RevokeSecretKey {
                prefix: prefix.clone(),
            };
            service.apply(&actor, change).await.map_err(service_message)?;
            out!("revoked {prefix}");
            Ok(())
        }
    }
}

async fn tokens_command(service: &Service, command: TokensCommand) -> Result<(), String> {
    let actor = Actor::cli();
    match command {
        TokensCommand::Create {
            name,
            role,
            expires_in,
        } => {
            let request = NewTokenRequest {
                name,
                service_role: Some(role),
                expires_in_days: expires_in,
            };
            let created = match service.apply(&actor, Change::CreateToken(request)).await {
                Ok(Outcome::Token(created)) => created,
                Ok(_) => return Err("the token was not created".into()),
                Err(error) => return Err(service_message(error)),
            };
            let expires = created
                .expires_at
                .map_or("never".to_string(), crate::ui::datetime);
            out!(
                "Created service token {}… (expires: {expires}). It is shown once:",
                created.prefix
            );
            out!("{}", created.token);
            Ok(())
        }
        TokensCommand::List => {
            let now = service.clock().now_ms();
            for token in service.tokens(&actor).await.map_err(service_message)? {
                let status = match (token.revoked_at, token.is_live(now)) {
                    (Some(_), _) => "revoked",
                    (None, false) => "expired",
                    (None, true) => "active",
                };
                let expires = token.expires_at.map_or("never".to_string(), crate::ui::datetime);
                let member = token.member_email.as_deref().unwrap_or("-");
                out!(
                    "{}…\t{}\t{}\t{}\t{member}\t{expires}\t{status}",
                    token.prefix,
                    token.kind.as_str(),
                    token.name,
                    token.role
                );
            }
            Ok(())
        }
        TokensCommand::Revoke { prefix } => {
            let change = Change::RevokeToken {
                prefix: prefix.clone(),
            };
            service.apply(&actor, change).await.map_err(service_message)?;
            out!("revoked {prefix}");
            Ok(())
        }
    }
}

async fn access_command(target: &Target, command: AccessCommand) -> Result<(), String> {
    use crate::service::Grantee;
    let (grant, target_flag) = match command {
        AccessCommand::Grant(target) => (true, target),
        AccessCommand::Revoke(target) => (false, target),
    };
    let (grantee, shown) = match (target_flag.company, target_flag.user, target_flag.segment) {
        (Some(id), _, _) => (Grantee::Company(id.clone()), format!("company {id}")),
        (_, Some(id), _) => (Grantee::User(id.clone()), format!("user {id}")),
        (_, _, Some(key)) => {
            let parsed =
                crate::model::SegmentKey::parse(key.clone()).map_err(|e| format!("--segment: {e}"))?;
            (Grantee::Segment(parsed), format!("segment {key}"))
        }
        (None, None, None) => return Err("say whose access: --company, --user or --segment".into()),
    };
    let (flag, environment) = (&target_flag.flag, &target_flag.environment);
    let version = target.change_access(flag, environment, grantee, grant).await?;
    let (done, preposition) = if grant {
        ("granted", "to")
    } else {
        ("revoked", "from")
    };
    out!("{done} {shown} {preposition} {flag} in {environment} (access rules now at version {version})");
    Ok(())
}

async fn flags_command(target: &Target, command: FlagsCommand) -> Result<(), String> {
    match command {
        FlagsCommand::List { archived, format } => {
            let flags = target.flags(archived).await?;
            print_flags(&flags, format)
        }
        FlagsCommand::Create {
            key,
            name,
            description,
            permanent,
        } => {
            target
                .create_flag(&key, name.as_deref(), &description, permanent)
                .await?;
            out!(
                "created {} (off everywhere, in the first release stage)",
                key.trim()
            );
            Ok(())
        }
        FlagsCommand::MoveStage { key, stage, dry_run } => {
            let (stage, changes) = target.move_stage(&key, &stage, dry_run).await?;
            for change in &changes {
                out!("{change}");
            }
            match dry_run {
                true => out!(
                    "dry run: moving {key} to {stage} would change {} environment(s); nothing was written",
                    changes.len()
                ),
                false => out!(
                    "moved {key} to {stage} ({} environment(s) took the stage's defaults)",
                    changes.len()
                ),
            }
            Ok(())
        }
    }
}

fn print_flags(flags: &[FlagLine], format: Format) -> Result<(), String> {
    match format {
        Format::Json => {
            let document = serde_json::json!({ "flags": flags });
            out!(
                "{}",
                serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?
            );
        }
        Format::Text if flags.is_empty() => out!("no flags"),
        Format::Text => {
            for flag in flags {
                out!("{}\t{}\t{}\t{}", flag.key, flag.name, flag.stage, flag.kind);
            }
        }
    }
    Ok(())
}

async fn code_refs_command(service: &Service, path: &std::path::Path, format: Format) -> Result<(), String> {
    let document = config_file::export(service, &Actor::cli())
        .await
        .map_err(service_message)?;
    let keys: Vec<String> = document.flags.iter().map(|f| f.key.to_string()).collect();
    let scan = crate::code_refs::scan(path, &keys)?;
    match format {
        Format::Text => out_text!("{}", crate::code_refs::to_text(&scan)),
        Format::Json => out!(
            "{}",
            serde_json::to_string_pretty(&scan).map_err(|e| format!("cannot write the result: {e}"))?
        ),
    }
    Ok(())
}

fn print_document(format: Format, text: String, json: serde_json::Value) -> Result<(), String> {
    match format {
        Format::Text => out_text!("{text}"),
        Format::Json => out!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| format!("cannot write the result: {e}"))?
        ),
    }
    Ok(())
}

async fn usage_command(
    service: &Service,
    flag: Option<&str>,
    environment: Option<&str>,
    days: u32,
    format: Format,
) -> Result<(), String> {
    use crate::usage_report as report;
    let actor = Actor::cli();
    if let Some(flag) = flag {
        let usage = service
            .flag_usage(&actor, flag, environment, days)
            .await
            .map_err(service_message)?;
        return print_document(format, report::flag_text(&usage), report::flag_json(&usage));
    }
    if environment.is_some() {
        return Err("--environment needs a FLAG".into());
    }
    let document = config_file::export(service, &actor)
        .await
        .map_err(service_message)?;
    let keys: Vec<String> = document.flags.iter().map(|f| f.key.to_string()).collect();
    let checks = service
        .daily_checks(&actor, &keys, days)
        .await
        .map_err(service_message)?;
    let last = service
        .last_checked(&actor, Some(&keys))
        .await
        .map_err(service_message)?;
    let rows: Vec<report::FlagChecks> = keys
        .into_iter()
        .map(|key| report::FlagChecks {
            checks: checks.get(&key).map_or(0, |c| c.iter().sum()),
            last_checked: last.get(&key).copied(),
            key,
        })
        .collect();
    print_document(
        format,
        report::summary_text(days, &rows),
        report::summary_json(days, &rows),
    )
}

async fn stale_command(service: &Service, format: Format) -> Result<(), String> {
    use crate::usage_report as report;
    let stale = service
        .stale_flags(&Actor::cli())
        .await
        .map_err(service_message)?;
    print_document(format, report::stale_text(&stale), report::stale_json(&stale))
}

async fn types_command(
    target: &Target,
    lang: TypesLang,
    sdk: TypesSdk,
    output: Option<&std::path::Path>,
) -> Result<(), String> {
    let document = target.export().await?;
    let sdk = match sdk {
        TypesSdk::Node => crate::typegen::Sdk::Node,
        TypesSdk::Browser => crate::typegen::Sdk::Browser,
        TypesSdk::React => crate::typegen::Sdk::React,
    };
    let text = match lang {
        TypesLang::Typescript => crate::typegen::typescript(&document, sdk),
        TypesLang::Rust => crate::typegen::rust(&document),
    };
    match output {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let flags = document.flags.iter().filter(|f| !f.archived).count();
            eprintln!("wrote the types of {flags} flags to {}", path.display());
        }
        None => out_text!("{text}"),
    }
    Ok(())
}

async fn export_command(target: &Target, output: Option<&std::path::Path>) -> Result<(), String> {
    let document = target.export().await?;
    let text = document
        .to_json()
        .map_err(|e| format!("cannot write the document: {e}"))?;
    match output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("exported {} flags to {}", document.flags.len(), path.display());
        }
        None => out_text!("{text}"),
    }
    Ok(())
}

async fn import_command(target: &Target, file: &std::path::Path, dry_run: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let changes = match target.import(&text, dry_run).await {
        Ok(changes) => changes,
        Err(ImportError::Invalid(problems)) => {
            // Every problem on its own line, so all of them can be fixed in one go.
            for problem in &problems {
                eprintln!("error: {}: {problem}", file.display());
            }
            return Err(format!(
                "{}: {} problem(s); nothing was imported",
                file.display(),
                problems.len()
            ));
        }
        Err(ImportError::Other(message)) => return Err(message),
    };
    for change in &changes {
        out!("{change}");
    }
    match (changes.len(), dry_run) {
        (0, _) => out!(
            "nothing to change: the database already matches {}",
            file.display()
        ),
        (n, true) => out!("dry run: {n} change(s) would be made; nothing was written"),
        (n, false) => out!("imported {}: {n} change(s)", file.display()),
    }
    Ok(())
}

async fn serve(settings: ServerSettings) -> Result<(), String> {
    // Handlers go in before the port opens: a SIGTERM that arrives while starting up must stop the
    // server cleanly too, not kill it with the default disposition.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.map_err(|e| e.to_string())?;
    let url = format!("http://{}", app.local_addr());
    tracing::info!(%url, database = %database_url, "Gatehouse is listening");
    app.run_until(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("Gatehouse stopped");
    Ok(())
}

/// Registers SIGINT and SIGTERM handlers now; the future resolves on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // Logs go to stderr: stdout carries what a command prints (an export, JSON, a new token).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
