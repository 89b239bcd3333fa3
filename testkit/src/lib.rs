//! Helpers for the integration tests of the connector crates.
//!
//! Tests start their own server processes (ClickHouse, an SMTP server, a
//! Pulsar-protocol broker...) from binaries that `scripts/install/*.sh`
//! installs, each in a temp dir on a free loopback port, and stop them on
//! drop, so tests run in parallel without sharing state. A missing binary
//! fails the test with the install command to run; it never skips.

#![forbid(unsafe_code)]

#[cfg(feature = "clickhouse")]
pub mod clickhouse;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The command that installs every test dependency.
pub const INSTALL_COMMAND: &str = "scripts/install-test-deps.sh";

/// Where `scripts/install/*.sh` put tools that are not on the PATH
/// (overridable with `CONNECTORS_TEST_TOOLS`).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("CONNECTORS_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/connectors-test"))
}

/// Finds an installed binary: an absolute path, a path under [`tools_dir`],
/// or a name on the PATH. Panics with the install command when missing.
pub fn require_binary(name: &str) -> PathBuf {
    let candidates = [PathBuf::from(name), tools_dir().join(name)];
    for c in &candidates {
        if c.is_absolute() && c.is_file() {
            return c.clone();
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "`{name}` is not installed (looked in {} and on the PATH); run `{INSTALL_COMMAND}` first",
        tools_dir().display()
    );
}

/// A command that runs the example `name` of the calling package.
///
/// Tests run the example binary rather than `cargo run --example`, so that
/// they can signal the process itself and no second build with another
/// feature set happens inside a test. A plain `cargo test` builds every
/// example before it runs the tests and links it as
/// `target/<profile>/examples/<name>`; that binary is used. When it is
/// missing (a run with `--test` alone, or `--all-targets`, which builds
/// examples as test harnesses instead), it is built with
/// `cargo build --example` first.
pub fn example_command(name: &str) -> Command {
    let test_exe = std::env::current_exe().expect("path of the test binary");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        let target_dir = profile_dir.parent().expect("target directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--example", name, "--target-dir"])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    assert!(
        binary.is_file(),
        "example binary {} not found",
        binary.display()
    );
    Command::new(binary)
}

/// A free TCP port on 127.0.0.1 (bound, then released for the caller).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Waits until something accepts TCP connections at `addr`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A child process killed (and reaped) on drop, with its log file kept in a
/// temp dir for failure messages.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    name: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `command` with stdout and stderr going to a log file in a new
    /// temp dir (available as [`ServerProcess::dir`] for data and config).
    pub fn start(name: &str, mut command: Command, dir: tempfile::TempDir) -> ServerProcess {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}; run `{INSTALL_COMMAND}`"));
        ServerProcess {
            child: Some(child),
            name: name.to_owned(),
            log,
            dir,
        }
    }

    /// A new temp dir for a server's files.
    pub fn temp_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("connectors-test-")
            .tempdir()
            .expect("create temp dir")
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the server to accept connections at `addr`; panics with its
    /// log if it does not, or if it exited.
    pub fn wait_ready(&mut self, addr: SocketAddr, timeout: Duration) {
        if wait_for_tcp(addr, timeout) {
            return;
        }
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        panic!(
            "{} did not accept connections on {addr} within {timeout:?} (exit status: {status:?}); log:\n{}",
            self.name,
            self.log()
        );
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(feature = "pulsar")]
pub mod pulsar;

#[cfg(feature = "registry")]
pub mod registry;

#[cfg(feature = "smtp")]
pub mod smtp;

/// Reading criterion's results so a benchmark can print our speed against
/// its baseline measured in the same run.
pub mod bench {
    use std::path::PathBuf;

    fn criterion_dir() -> Option<PathBuf> {
        if let Some(home) = std::env::var_os("CRITERION_HOME") {
            return Some(PathBuf::from(home));
        }
        if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
            return Some(PathBuf::from(target).join("criterion"));
        }
        let out =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .output()
                .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let key = "\"target_directory\":\"";
        let start = text.find(key)? + key.len();
        let end = start + text[start..].find('"')?;
        Some(PathBuf::from(&text[start..end]).join("criterion"))
    }

    /// Mean time per iteration, in nanoseconds, of `group/id` from the last run.
    pub fn mean_ns(group: &str, id: &str) -> Option<f64> {
        let path = criterion_dir()?
            .join(group)
            .join(id)
            .join("new")
            .join("estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let key = "\"mean\":{\"confidence_interval\":";
        let mean = &text[text.find(key)?..];
        let pe = "\"point_estimate\":";
        let start = mean.find(pe)? + pe.len();
        let end = start + mean[start..].find([',', '}'])?;
        mean[start..end].trim().parse().ok()
    }

    /// Prints `group: ours is N.NNx the speed of baseline` (above 1 is faster)
    /// and returns the ratio.
    pub fn report_ratio(group: &str, ours: &str, baseline: &str) -> Option<f64> {
        let (o, b) = (mean_ns(group, ours)?, mean_ns(group, baseline)?);
        let ratio = b / o;
        println!(
            "RATIO {group}: {ours} runs at {ratio:.3}x the speed of {baseline} ({o:.0} ns vs {b:.0} ns per iteration)"
        );
        Some(ratio)
    }
}
