//! Connection checks: the TLS files load, the address can be listened on
//! (or this process already serves it), the endpoint is free or
//! shareable; each failure reported with its step, kind and reason.

mod common;

use std::time::Duration;

use common::{config, local};
use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{CheckReport, Pipeline, Source};
use source_httppush::{HttpPushConfig, HttpPushSource, HttpPushTable};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn check(config: HttpPushConfig) -> CheckReport {
    HttpPushSource::new(config).unwrap().check(TIMEOUT).await
}

fn failure(report: &CheckReport) -> (String, FailureKind, String) {
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn a_free_port_passes_without_staying_bound() {
    let addr = local();
    let report = check(HttpPushConfig::new("/api/data").with_address(addr)).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.to_string(),
        format!(
            "httppush source: ok     listen on {addr}: {addr} can be bound\n\
             httppush source: ok     serve POST /api/data: free"
        )
    );
    assert!(common::port_is_free(addr), "the check released the port");
}

#[tokio::test]
async fn a_port_used_by_another_process_fails() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let report = check(HttpPushConfig::new("/x").with_address(addr)).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("listen on {addr}"));
    assert_eq!(kind, FailureKind::Invalid);
    assert!(
        reason.starts_with("the address is already in use by another process"),
        "{reason}"
    );
    assert_eq!(
        report.steps.len(),
        1,
        "the check stops at the first failure"
    );
}

#[tokio::test]
async fn an_address_of_another_machine_is_unreachable() {
    // 192.0.2.0/24 is reserved for documentation: never a local address.
    let report =
        check(HttpPushConfig::new("/x").with_address("192.0.2.1:10081".parse().unwrap())).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "listen on 192.0.2.1:10081");
    assert_eq!(kind, FailureKind::Unreachable);
    assert!(
        reason.starts_with("the IP address is not an address of this machine"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_running_source_finds_its_own_server_and_endpoint() {
    let addr = local();
    let mut source = HttpPushSource::new(HttpPushConfig::new("/mine").with_address(addr)).unwrap();
    source.start().await.unwrap();
    let report = source.check(TIMEOUT).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.to_string(),
        format!(
            "httppush source: ok     listen on {addr}: already served by this process on {addr} (1 endpoint(s))\n\
             httppush source: ok     serve POST /mine: registered by this source"
        )
    );
    // Another endpoint on the same server is fine too.
    let report = check(HttpPushConfig::new("/other").with_address(addr)).await;
    assert!(report.is_ok(), "{report}");
}

#[tokio::test]
async fn an_endpoint_taken_by_another_source_fails_unless_shared() {
    let addr = local();
    let mut owner = HttpPushSource::new(HttpPushConfig::new("/taken").with_address(addr)).unwrap();
    owner.start().await.unwrap();
    let report = check(HttpPushConfig::new("/taken").with_address(addr)).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "serve POST /taken");
    assert_eq!(kind, FailureKind::Invalid);
    assert_eq!(
        reason,
        format!(
            "`POST /taken` on {addr} is already served by another httppush source; \
             set `shared` to `true` on every source of the endpoint to give each of them every record"
        )
    );
    // PUT on the same path is free.
    let put = HttpPushConfig::new("/taken")
        .with_address(addr)
        .with_method(source_httppush::PushMethod::Put);
    assert!(check(put).await.is_ok());

    let shared = || {
        HttpPushConfig::new("/s")
            .with_address(addr)
            .with_shared(true)
    };
    let table = HttpPushTable::start(shared().with_retain_size(1))
        .await
        .unwrap();
    let report = check(shared()).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with("serve POST /s: shared with other sources of this process"),
        "{report}"
    );
    let report = check(shared().with_max_body_bytes(1)).await;
    assert_eq!(
        failure(&report).2,
        format!(
            "differs from the other sources sharing `POST /s` on {addr}; sources sharing an endpoint must agree on it"
        )
    );
    assert!(table.check(TIMEOUT).await.is_ok());
}

#[tokio::test]
async fn tls_files_are_loaded_and_their_problems_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "a");
    let (_, other_key) = self_signed(dir.path(), "b");
    let addr = local();

    let report = check(config("/t").with_address(addr).with_tls(&cert, &key)).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.steps[0].name,
        format!(
            "load TLS certificate `{}` and key `{}`",
            cert.display(),
            key.display()
        )
    );
    assert_eq!(
        report.steps[0].outcome,
        CheckOutcome::Passed("1 certificate(s) in the chain".into())
    );

    let missing = dir.path().join("missing.pem");
    let (_, kind, reason) = failure(&check(config("/t").with_tls(&missing, &key)).await);
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(
        reason,
        format!(
            "cannot read the certificate file `{}`: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let (_, kind, reason) = failure(&check(config("/t").with_tls(&key, &key)).await);
    assert_eq!(kind, FailureKind::Invalid);
    assert_eq!(
        reason,
        format!(
            "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            key.display()
        )
    );

    let (_, kind, reason) = failure(&check(config("/t").with_tls(&cert, &other_key)).await);
    assert_eq!(kind, FailureKind::Invalid);
    assert!(
        reason.starts_with(&format!(
            "the key `{}` cannot serve the certificate `{}`",
            other_key.display(),
            cert.display()
        )),
        "{reason}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let (_, kind, reason) = failure(&check(config("/t").with_tls(&garbage, &key)).await);
    assert_eq!(kind, FailureKind::Invalid);
    assert!(
        reason.starts_with(&format!(
            "`{}` is not a valid PEM certificate file:",
            garbage.display()
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn a_server_of_this_process_with_other_tls_settings_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "a");
    let addr = local();
    let mut https = HttpPushSource::new(
        HttpPushConfig::new("/secure")
            .with_address(addr)
            .with_tls(&cert, &key),
    )
    .unwrap();
    https.start().await.unwrap();
    let (step, kind, reason) =
        failure(&check(HttpPushConfig::new("/plain").with_address(addr)).await);
    assert_eq!(step, format!("listen on {addr}"));
    assert_eq!(kind, FailureKind::Invalid);
    assert_eq!(
        reason,
        format!("this process already serves {addr} with HTTPS for other sources")
    );
}

#[tokio::test]
async fn the_pipeline_runs_the_check_at_start_when_asked() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let source = HttpPushSource::new(HttpPushConfig::new("/x").with_address(addr)).unwrap();
    let err = Pipeline::new(source)
        .to(connector_core::memory::DiscardSink::new())
        .check_on_start(TIMEOUT)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "httppush source: FAILED listen on {addr}: invalid: the address is already in use by another process"
        )),
        "{err}"
    );
}
