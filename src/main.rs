//! alb-controller: provisions AWS Application Load Balancers for Kubernetes Ingresses.

#![deny(warnings)]

mod aws;
mod config;
mod controller;
mod k8s;
mod model;
mod sync;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "alb-controller", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<config::Config>),
    /// Print the version.
    Version,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("alb-controller {}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        Command::Run(cfg) => {
            telemetry::init_logging(cfg.log_json);
            match controller::run(*cfg).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "controller stopped");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
