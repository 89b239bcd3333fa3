//! What a running pipeline shows: a live status line on a terminal (log
//! lines are printed above it), periodic log lines otherwise, and a final
//! summary.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector_core::pipeline::StopReason;
use connector_core::{Metrics, MetricsSnapshot, PipelineReport};
use tracing_subscriber::fmt::MakeWriter;

/// Standard error, shared by the log and the status line.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Mutex<ConsoleState>>,
}

struct ConsoleState {
    /// Whether standard error is a terminal (the status line is redrawn in place).
    tty: bool,
    /// The status line on screen, if any.
    line: String,
}

impl Console {
    /// Standard error, detecting whether it is a terminal.
    pub fn stderr() -> Console {
        Console {
            inner: Arc::new(Mutex::new(ConsoleState {
                tty: std::io::stderr().is_terminal(),
                line: String::new(),
            })),
        }
    }

    /// Whether the live status line is drawn.
    pub fn is_tty(&self) -> bool {
        self.lock().tty
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConsoleState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the status line, cut to the terminal's width so that it
    /// never wraps (a wrapped line could not be redrawn in place).
    pub fn set_status(&self, mut line: String) {
        if let Some((terminal_size::Width(w), _)) =
            terminal_size::terminal_size_of(std::io::stderr())
            && let Some((cut, _)) = line.char_indices().nth(usize::from(w).saturating_sub(1))
        {
            line.truncate(cut);
        }
        let mut state = self.lock();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        state.line = line;
    }

    /// Removes the status line.
    pub fn clear_status(&self) {
        let mut state = self.lock();
        if state.tty && !state.line.is_empty() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        state.line.clear();
    }

    /// Prints a line above the status line.
    pub fn print(&self, text: &str) {
        self.write_above(format!("{text}\n").as_bytes());
    }

    fn write_above(&self, bytes: &[u8]) {
        let state = self.lock();
        let mut err = std::io::stderr().lock();
        let redraw = state.tty && !state.line.is_empty();
        if redraw {
            let _ = err.write_all(b"\r\x1b[2K");
        }
        let _ = err.write_all(bytes);
        if redraw {
            let _ = err.write_all(state.line.as_bytes());
        }
        let _ = err.flush();
    }
}

/// One log event, written above the status line when it is dropped.
pub struct LogLine {
    console: Console,
    buffer: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            self.console.write_above(&self.buffer);
        }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            console: self.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Rates between two snapshots.
fn status_text(
    now: &MetricsSnapshot,
    last: &MetricsSnapshot,
    secs: f64,
    elapsed: Duration,
) -> String {
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs.max(1e-9);
    format!(
        "in {}/s ({}/s) · out {}/s ({}/s) · {} delivered · {} errors · {} batches in flight · {}",
        count(rate(now.records_in, last.records_in)),
        bytes(rate(now.bytes_in, last.bytes_in)),
        count(rate(now.records_out, last.records_out)),
        bytes(rate(now.bytes_out, last.bytes_out)),
        count(now.records_out as f64),
        now.bad_records + now.batches_failed,
        now.batches_in_flight,
        clock(elapsed),
    )
}

/// Shows progress until the task is aborted: the status line every
/// `every` on a terminal, otherwise a log line every `every`.
pub async fn report_progress(console: Console, metrics: Arc<Metrics>, every: Duration) {
    let started = Instant::now();
    let mut last = metrics.snapshot();
    let mut last_at = Instant::now();
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = metrics.snapshot();
        let text = status_text(
            &now,
            &last,
            last_at.elapsed().as_secs_f64(),
            started.elapsed(),
        );
        if console.is_tty() {
            console.set_status(text);
        } else {
            tracing::info!("status: {text}");
        }
        last = now;
        last_at = Instant::now();
    }
}

/// The final summary of a run.
pub fn summary(report: &PipelineReport) -> String {
    let m = &report.metrics;
    let why = match report.stopped_by {
        StopReason::EndOfInput => "end of input",
        StopReason::Shutdown => "shutdown requested",
    };
    format!(
        "finished ({why}) after {}: {} records in ({}), {} out ({}), {} bad, {} dead-lettered; batches: {} delivered, {} failed, {} rejected",
        clock(report.elapsed),
        m.records_in,
        bytes(m.bytes_in as f64),
        m.records_out,
        bytes(m.bytes_out as f64),
        m.bad_records,
        m.dead_lettered,
        m.batches_delivered,
        m.batches_failed,
        m.batches_rejected,
    )
}

/// `950`, `12.3k`, `4.5M`.
fn count(n: f64) -> String {
    if n < 1_000.0 {
        format!("{n:.0}")
    } else if n < 1_000_000.0 {
        format!("{:.1}k", n / 1_000.0)
    } else {
        format!("{:.1}M", n / 1_000_000.0)
    }
}

/// `512 B`, `1.2 kB`, `3.4 MB`.
fn bytes(n: f64) -> String {
    if n < 1_000.0 {
        format!("{n:.0} B")
    } else if n < 1_000_000.0 {
        format!("{:.1} kB", n / 1_000.0)
    } else if n < 1_000_000_000.0 {
        format!("{:.1} MB", n / 1_000_000.0)
    } else {
        format!("{:.1} GB", n / 1_000_000_000.0)
    }
}

/// `4.2s`, `3m05s`, `1h02m`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(count(950.0), "950");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(clock(Duration::from_secs(185)), "3m05s");
        let now = MetricsSnapshot {
            records_in: 2000,
            bytes_in: 20_000,
            records_out: 1000,
            bytes_out: 10_000,
            bad_records: 2,
            batches_failed: 1,
            batches_in_flight: 3,
            ..MetricsSnapshot::default()
        };
        assert_eq!(
            status_text(
                &now,
                &MetricsSnapshot::default(),
                2.0,
                Duration::from_secs(2)
            ),
            "in 1.0k/s (10.0 kB/s) · out 500/s (5.0 kB/s) · 1.0k delivered · 3 errors · 3 batches in flight · 2.0s"
        );
    }
}
