//! The event templates and how each one fills a record.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use connector_core::{DataType, Field, Schema, Value};
use rand::Rng;

/// Which kind of events to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// `device` (`device_0`..`device_2`), `number` (float in [0, 100]), `time`.
    Iot,
    /// `username` (`user1`/`user2`), `city` (`Shanghai`/`Beijing`), `time`.
    UserLogins,
    /// `hostname` (`host_0`..`host_2`), `region` (`eu-central-1`, `us-west-1`,
    /// `sa-east-1`), `rack` (`1`..`3`), `usage_user`, `usage_system` (floats
    /// in [0, 100]), `time`.
    Devops,
}

const DEVICES: [&str; 3] = ["device_0", "device_1", "device_2"];
const USERS: [&str; 2] = ["user1", "user2"];
const CITIES: [&str; 2] = ["Shanghai", "Beijing"];
const HOSTS: [&str; 3] = ["host_0", "host_1", "host_2"];
const REGIONS: [&str; 3] = ["eu-central-1", "us-west-1", "sa-east-1"];
const RACKS: [&str; 3] = ["1", "2", "3"];

impl Template {
    /// Every template, in documentation order.
    pub const ALL: [Template; 3] = [Template::Iot, Template::UserLogins, Template::Devops];

    /// The name used in the `template` property.
    pub fn name(self) -> &'static str {
        match self {
            Template::Iot => "iot",
            Template::UserLogins => "user_logins",
            Template::Devops => "devops",
        }
    }

    /// The schema of the template's records.
    pub fn schema(self) -> Arc<Schema> {
        use DataType::{Float64, String, Timestamp};
        let fields = match self {
            Template::Iot => vec![
                Field::required("device", String),
                Field::required("number", Float64),
                Field::required("time", Timestamp),
            ],
            Template::UserLogins => vec![
                Field::required("username", String),
                Field::required("city", String),
                Field::required("time", Timestamp),
            ],
            Template::Devops => vec![
                Field::required("hostname", String),
                Field::required("region", String),
                Field::required("rack", String),
                Field::required("usage_user", Float64),
                Field::required("usage_system", Float64),
                Field::required("time", Timestamp),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// The values of one event at `time` (microseconds since the epoch).
    pub fn values(self, rng: &mut impl Rng, time: i64) -> Vec<Value> {
        fn pick(rng: &mut impl Rng, options: &[&str]) -> Value {
            Value::String(options[rng.random_range(0..options.len())].to_owned())
        }
        fn percent(rng: &mut impl Rng) -> Value {
            Value::Float64(rng.random_range(0.0..=100.0))
        }
        match self {
            Template::Iot => vec![pick(rng, &DEVICES), percent(rng), Value::Timestamp(time)],
            Template::UserLogins => vec![
                pick(rng, &USERS),
                pick(rng, &CITIES),
                Value::Timestamp(time),
            ],
            Template::Devops => vec![
                pick(rng, &HOSTS),
                pick(rng, &REGIONS),
                pick(rng, &RACKS),
                percent(rng),
                percent(rng),
                Value::Timestamp(time),
            ],
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Template {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("expected one of `iot`, `user_logins`, `devops`, got `{s}`"))
    }
}
