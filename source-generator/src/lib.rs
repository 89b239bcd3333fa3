//! The `stream_generator` source: random events from the `iot`,
//! `user_logins` or `devops` template, one every `interval` (or as fast as
//! possible with `0ms`), reproducible with a `seed`, finite with a `count`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> connector_core::Result<()> {
//! use connector_core::{Properties, Source, Value};
//! use source_generator::GeneratorSource;
//!
//! let props = Properties::from_pairs([("template", "iot"), ("interval", "0ms"), ("count", "3"), ("seed", "7")]);
//! let mut source = GeneratorSource::from_properties(&props)?;
//! let batch = source.next_batch().await?.expect("three records");
//! assert_eq!(batch.len(), 3);
//! let device = batch.records[0].get("device").and_then(Value::as_str).unwrap();
//! assert!(["device_0", "device_1", "device_2"].contains(&device));
//! assert!(source.next_batch().await?.is_none()); // count reached
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod source;
mod template;

pub use config::{GeneratorConfig, SPEC};
pub use source::GeneratorSource;
pub use template::Template;
