//! The library behind the `connect` command: run any source → sink pipeline of the connector library from
//! a TOML, YAML or JSON file (or from flags), validate it without
//! connecting, test its connections, and list every connector's
//! properties.
//!
//! ```text
//! connect run examples/pipelines/generator-to-console.toml
//! connect run --source stream_generator -p template=iot --filter 'number > 50' --sink console
//! connect check pipeline.yaml
//! connect test pipeline.yaml
//! connect list
//! connect describe kafka
//! ```
//!
//! The binary is a thin `main` over [`cli`] and [`run`]. Exit codes: 0 success, 1 runtime failure (or a failed connection test),
//! 2 configuration error.

#![forbid(unsafe_code)]

pub mod cli;
pub mod definition;
pub mod docs;
pub mod env;
pub mod issues;
pub mod metrics;
pub mod plan;
pub mod registry;
pub mod run;
pub mod sinks;
pub mod status;
pub mod transform;
