//! The `connect` command; see the library docs for what it does.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use connect::cli::{Cli, Command};
use connect::run::{self, exit};
use connect::status::Console;
use connect::{docs, registry};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            // Usage errors exit with 2 (clap's own convention matches ours);
            // `--help` and `--version` with 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::CONFIG
            } else {
                exit::OK
            });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::CONFIG);
        }
    };
    let sub = matches
        .subcommand()
        .map(|(_, m)| m)
        .expect("clap requires a subcommand");
    let console = Console::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("CONNECT_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(console.clone())
        .with_ansi(console.is_tty())
        .with_target(false)
        .init();

    let code = match &cli.command {
        Command::List(args) => {
            if args.json {
                println!("{:#}", docs::list_json());
            } else {
                print!("{}", docs::list_text());
            }
            exit::OK
        }
        Command::Describe(args) => describe(&args.type_name, args.json),
        Command::Check(args) => run::check(args, sub),
        Command::Run(args) => runtime().block_on(run::run(args, sub, console)),
        Command::Test(args) => runtime().block_on(run::test(args, sub)),
    };
    ExitCode::from(code)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the tokio runtime")
}

fn describe(name: &str, json: bool) -> u8 {
    if name == "pipeline" {
        print!("{}", docs::pipeline_text());
        return exit::OK;
    }
    let specs = docs::find(name);
    if specs.is_empty() {
        if let Some(route) = registry::route(name) {
            println!("{name}: {}", route.how);
            return exit::OK;
        }
        let hint = registry::suggest(name, docs::all_names())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        eprintln!(
            "connect: unknown connector type `{name}`{hint} (run `connect list` for every type)"
        );
        return exit::CONFIG;
    }
    if json {
        println!("{:#}", docs::describe_json(&specs));
    } else {
        let texts: Vec<String> = specs.iter().map(|s| docs::describe_text(s)).collect();
        print!("{}", texts.join("\n"));
    }
    exit::OK
}
