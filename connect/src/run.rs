//! `connect run`, `connect check` and `connect test`.

use std::time::Duration;

use clap::ArgMatches;
use connector_core::check::{CheckOutcome, CheckReport};
use connector_core::{CancellationToken, Error};

use crate::cli::{PipelineArgs, RunArgs, TestArgs};
use crate::issues::Issues;
use crate::plan::{Built, Plan};
use crate::status::{self, Console};

/// Process exit codes.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// The pipeline failed while running, or a connection test failed.
    pub const RUNTIME: u8 = 1;
    /// The pipeline's configuration is wrong.
    pub const CONFIG: u8 = 2;
}

/// Validates the one pipeline `args` give.
fn one_plan(args: &PipelineArgs, matches: &ArgMatches) -> Result<Plan, Issues> {
    if args.files.len() > 1 {
        let mut issues = Issues::new("command line");
        issues.add("", "give one pipeline file (only `check` takes several)");
        return Err(issues);
    }
    args.definitions(matches).remove(0).and_then(Plan::new)
}

/// `connect check`: validates each pipeline; prints `ok` lines to stdout
/// and problems to stderr.
pub fn check(args: &PipelineArgs, matches: &ArgMatches) -> u8 {
    let mut code = exit::OK;
    for def in args.definitions(matches) {
        match def.and_then(Plan::new) {
            Ok(plan) => {
                let sinks: Vec<&str> = plan.sinks.iter().map(|s| s.kind.spec.name).collect();
                println!(
                    "{}: ok ({} → {}{}{})",
                    plan.origin,
                    plan.source.kind.spec.name,
                    if plan.transforms.is_empty() {
                        String::new()
                    } else {
                        let n = plan.transforms.len();
                        format!("{n} transform{} → ", if n == 1 { "" } else { "s" })
                    },
                    sinks.join(", "),
                    plan.dead_letter
                        .as_ref()
                        .map(|d| format!("; bad records → {}", d.kind.spec.name))
                        .unwrap_or_default(),
                );
            }
            Err(issues) => {
                eprintln!("{issues}");
                code = exit::CONFIG;
            }
        }
    }
    code
}

/// `connect test`: runs every connector's connection check and prints one
/// line per step.
pub async fn test(args: &TestArgs, matches: &ArgMatches) -> u8 {
    let plan = match one_plan(&args.pipeline, matches) {
        Ok(plan) => plan,
        Err(issues) => {
            eprintln!("{issues}");
            return exit::CONFIG;
        }
    };
    let built = match plan.build() {
        Ok(built) => built,
        Err(issues) => {
            eprintln!("{issues}");
            return exit::CONFIG;
        }
    };
    let mut built = built;
    let reports = check_connections(&mut built, args.timeout).await;
    let (steps, failed) = count_steps(&reports);
    for report in &reports {
        if report.steps.is_empty() {
            println!("{}: FAILED no step was checked", report.component);
        } else {
            println!("{report}");
        }
    }
    if failed == 0 {
        println!("{}: all {steps} checks passed", plan.origin);
        exit::OK
    } else {
        println!("{}: {failed} of {steps} checks failed", plan.origin);
        exit::RUNTIME
    }
}

/// Runs every connector's connection check, in pipeline order. Two
/// connectors of one type are told apart by their section.
async fn check_connections(built: &mut Built, timeout: Duration) -> Vec<CheckReport> {
    let mut reports = vec![("source".to_owned(), built.source.check(timeout).await)];
    for (section, sink) in &mut built.sinks {
        reports.push((section.clone(), sink.check(timeout).await));
    }
    if let Some(dl) = &mut built.dead_letter {
        reports.push(("dead_letter".to_owned(), dl.check(timeout).await));
    }
    let components: Vec<String> = reports.iter().map(|(_, r)| r.component.clone()).collect();
    reports
        .into_iter()
        .map(|(section, mut report)| {
            if components
                .iter()
                .filter(|c| **c == report.component)
                .count()
                > 1
            {
                report.component = format!("{} ({section})", report.component);
            }
            report
        })
        .collect()
}

/// (steps, failed steps); a report without steps counts as one failure.
fn count_steps(reports: &[CheckReport]) -> (usize, usize) {
    let steps = reports.iter().map(|r| r.steps.len().max(1)).sum();
    let failed = reports.iter().filter(|r| r.steps.is_empty()).count()
        + reports
            .iter()
            .flat_map(|r| &r.steps)
            .filter(|s| !matches!(s.outcome, CheckOutcome::Passed(_)))
            .count();
    (steps, failed)
}

/// `connect run`.
pub async fn run(args: &RunArgs, matches: &ArgMatches, console: Console) -> u8 {
    let plan = match one_plan(&args.pipeline, matches) {
        Ok(plan) => plan,
        Err(issues) => {
            console.print(&issues.to_string());
            return exit::CONFIG;
        }
    };
    let built = match plan.build() {
        Ok(built) => built,
        Err(issues) => {
            console.print(&issues.to_string());
            return exit::CONFIG;
        }
    };
    let mut built = built;
    // The same checks as `Pipeline::check_on_start`, run here rather than
    // by the runner so that each step is printed as `connect test` prints
    // it and the dead-letter sink is checked too.
    if args.check_first || plan.options.check_on_start {
        let reports = check_connections(&mut built, plan.options.check_timeout).await;
        for report in &reports {
            console.print(&report.to_string());
        }
        let (steps, failed) = count_steps(&reports);
        if failed > 0 {
            console.print(&format!(
                "connect: {failed} of {steps} connection checks failed; not starting"
            ));
            return exit::RUNTIME;
        }
    }
    let pipeline = plan.pipeline(built);
    let metrics = pipeline.metrics();
    let stop = CancellationToken::new();
    let pipeline = pipeline.shutdown_on(stop.clone());

    let metrics_task = match args.metrics_addr {
        Some(addr) => match crate::metrics::serve(addr, plan.name.clone(), metrics.clone()).await {
            Ok((bound, task)) => {
                tracing::info!("metrics at http://{bound}/metrics");
                Some(task)
            }
            Err(e) => {
                console.print(&format!("connect: cannot serve metrics on {addr}: {e}"));
                return exit::RUNTIME;
            }
        },
        None => None,
    };
    let signals = tokio::spawn(handle_signals(stop.clone(), console.clone()));
    let every = args.status_interval.unwrap_or(if console.is_tty() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    });
    let progress = tokio::spawn(status::report_progress(
        console.clone(),
        metrics.clone(),
        every,
    ));

    tracing::info!(
        pipeline = %plan.name,
        source = plan.source.kind.spec.name,
        sinks = %plan.sinks.iter().map(|s| s.kind.spec.name).collect::<Vec<_>>().join(", "),
        "running {}", plan.origin
    );
    let result = pipeline.run().await;
    progress.abort();
    signals.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    console.clear_status();
    match result {
        Ok(report) => {
            console.print(&format!("connect: {}", status::summary(&report)));
            exit::OK
        }
        Err(e) => {
            let snapshot = metrics.snapshot();
            console.print(&format!(
                "connect: pipeline failed: {e}\nconnect: {} records in, {} delivered before the failure",
                snapshot.records_in, snapshot.records_out
            ));
            match e {
                Error::Config { .. } | Error::ConfigList { .. } => exit::CONFIG,
                _ => exit::RUNTIME,
            }
        }
    }
}

/// The first SIGINT/SIGTERM drains and stops the pipeline; a second one
/// exits at once (what was not committed is delivered again next time).
async fn handle_signals(stop: CancellationToken, console: Console) {
    let mut signals = Signals::new();
    signals.next().await;
    console
        .print("connect: stopping: draining, flushing and committing (signal again to exit now)");
    stop.cancel();
    signals.next().await;
    console.clear_status();
    console.print("connect: second signal: exiting without waiting");
    std::process::exit(130);
}

/// SIGINT and SIGTERM, registered once so no signal between two waits is lost.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => {}
                _ = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
