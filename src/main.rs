//! Entry point of the `gatehouse` binary; everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the evaluation API's profile was dominated by allocation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = gatehouse::cli::Cli::parse();
    match gatehouse::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
