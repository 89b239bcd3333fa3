//! "Test connection": every endpoint answers, the credentials work, the
//! user may write, the database and table exist (or will be created) and
//! the table's columns fit the records. Nothing is written.

use std::time::Duration;

use connector_core::CheckReport;
use connector_core::check::FailureKind;

use crate::client::{ErrorClass, RequestError};
use crate::config::SPEC;
use crate::sink::{ClickHouseSink, database_exists, describe, detect_server, unknown_settings};
use crate::table::{create_table_sql, qualified};

/// The kind and text of a failed step.
fn failure(error: &RequestError) -> (FailureKind, String) {
    let kind = match error {
        RequestError::Connect { tls: true, .. } => FailureKind::Tls,
        RequestError::Connect { .. } => FailureKind::Unreachable,
        RequestError::NoAnswer { timeout: true, .. } => FailureKind::Timeout,
        RequestError::NoAnswer { .. } => FailureKind::Unreachable,
        RequestError::Protocol { .. } => FailureKind::Invalid,
        RequestError::Server(e) => match e.class() {
            ErrorClass::Auth => FailureKind::AuthRefused,
            ErrorClass::Permission => FailureKind::PermissionDenied,
            ErrorClass::NotFound => FailureKind::NotFound,
            _ => FailureKind::Invalid,
        },
    };
    (kind, error.to_string())
}

/// Runs the check (see the module docs); stops at the first failed step
/// after the endpoints, which are all tried.
pub(crate) async fn run(sink: &ClickHouseSink, timeout: Duration) -> CheckReport {
    let mut report = CheckReport::new(SPEC.component());
    let client = sink.client().clone();
    let config = sink.config().clone();

    let mut reachable = None;
    for (index, endpoint) in client.endpoints().iter().enumerate() {
        let ok = report
            .step(format!("connect to {endpoint}"), timeout, async {
                client
                    .ping(index)
                    .await
                    .map(|()| "ClickHouse answers /ping".to_owned())
                    .map_err(|e| failure(&e))
            })
            .await;
        if ok && reachable.is_none() {
            reachable = Some(index);
        }
    }
    let Some(index) = reachable else {
        return report;
    };

    let mut server = None;
    let authenticated = report
        .step(
            format!("authenticate as `{}`", client.username()),
            timeout,
            async {
                let info = detect_server(&client, index, &config)
                    .await
                    .map_err(|e| failure(&e))?;
                let detail = format!("ClickHouse {}", info.version);
                server = Some(info);
                Ok(detail)
            },
        )
        .await;
    let Some(server) = server.filter(|_| authenticated) else {
        return report;
    };

    let (database, table) = config.target();
    let db_ok = report
        .step(format!("database `{database}`"), timeout, async {
            match database_exists(&client, index, &database).await {
                Ok(true) => Ok("exists".to_owned()),
                Ok(false) if config.init_sql.is_some() => {
                    Ok("does not exist yet; `init_sql` runs before the first insert".to_owned())
                }
                Ok(false) => Err((
                    FailureKind::NotFound,
                    format!("database `{database}` does not exist"),
                )),
                Err(e) => Err(failure(&e)),
            }
        })
        .await;
    if !db_ok {
        return report;
    }

    let write_ok = report
        .step("permission to write", timeout, async {
            let sql = "SELECT value FROM system.settings WHERE name = 'readonly'";
            match client.query(index, sql, &[]).await {
                Ok(v) if v.trim() == "0" => Ok("the user is not read-only".to_owned()),
                Ok(v) => Err((
                    FailureKind::PermissionDenied,
                    format!(
                        "user `{}` is read-only (readonly = {}) and cannot insert",
                        client.username(),
                        v.trim()
                    ),
                )),
                Err(e) => Err(failure(&e)),
            }
        })
        .await;
    if !write_ok {
        return report;
    }

    if !config.settings.is_empty() {
        let ok = report
            .step("settings", timeout, async {
                let unknown = unknown_settings(&client, index, &config)
                    .await
                    .map_err(|e| failure(&e))?;
                if unknown.is_empty() {
                    Ok(format!("{} known to the server", config.settings.len()))
                } else {
                    Err((
                        FailureKind::Invalid,
                        format!(
                            "ClickHouse {} has no setting {}",
                            server.version,
                            unknown.join(", ")
                        ),
                    ))
                }
            })
            .await;
        if !ok {
            return report;
        }
    }

    let target = qualified(&database, &table);
    report
        .step(format!("table {target}"), timeout, async {
            let exists = client
                .query(index, &format!("EXISTS TABLE {target}"), &[])
                .await
                .map_err(|e| failure(&e))?;
            if exists.trim() != "1" {
                return match (&config.init_sql, &config.engine, &config.schema) {
                    (Some(_), _, _) => Ok("does not exist yet; `init_sql` runs before the first insert".to_owned()),
                    (None, Some(engine), Some(schema)) => Ok(format!(
                        "does not exist yet; will be created: {}",
                        create_table_sql(&database, &table, schema, engine, config.suffix.as_deref(), &server)
                    )),
                    (None, Some(engine), None) => Ok(format!(
                        "does not exist yet; will be created from the first batch's schema with ENGINE = {engine}"
                    )),
                    (None, None, _) => Err((
                        FailureKind::NotFound,
                        format!(
                            "table {target} does not exist, and neither `engine` nor `init_sql` is set to create it"
                        ),
                    )),
                };
            }
            let info = describe(&client, index, &database, &table)
                .await
                .map_err(|e| failure(&e))?;
            if let Some(schema) = &config.schema {
                return match info.plan(schema) {
                    Ok(plan) => Ok(format!(
                        "exists; the records' {} fields fit its {} columns",
                        plan.pairs.len(),
                        info.columns.len()
                    )),
                    Err(reason) => Err((FailureKind::Invalid, reason)),
                };
            }
            let unwritable = info.unwritable_required();
            if let Some(column) = unwritable.first() {
                return Err((
                    FailureKind::Invalid,
                    format!(
                        "column `{}` has type {}, which the sink cannot write, and no default",
                        column.name, column.type_name
                    ),
                ));
            }
            let columns: Vec<String> = info
                .columns
                .iter()
                .filter(|c| c.insertable())
                .map(|c| format!("{} {}", c.name, c.type_name))
                .collect();
            Ok(format!("exists with columns {}", columns.join(", ")))
        })
        .await;
    report
}
