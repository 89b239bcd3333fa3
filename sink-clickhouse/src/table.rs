//! The target table: its columns (from `DESCRIBE TABLE`), how record
//! fields map onto them, the `CREATE TABLE` the sink issues from a record
//! schema, and encoding records into one RowBinary insert body.

use std::sync::Arc;

use connector_core::{Field, Record, Schema};

use crate::rowbinary::{write_default, write_value};
use crate::server::ServerInfo;
use crate::types::{ChType, column_type_for, quote_ident};

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// The type, parsed.
    pub ty: ChType,
    /// The type as the server printed it.
    pub type_name: String,
    /// `DEFAULT`, `MATERIALIZED`, `ALIAS`, `EPHEMERAL` or empty.
    pub default_kind: String,
}

impl Column {
    /// Whether an insert may name this column.
    pub fn insertable(&self) -> bool {
        !matches!(self.default_kind.as_str(), "MATERIALIZED" | "ALIAS")
    }

    /// Whether records must provide this column: it has no default
    /// expression and cannot be NULL. Arrays and maps, which cannot be
    /// `Nullable`, are never required: empty is their absence.
    pub fn required(&self) -> bool {
        self.insertable()
            && self.default_kind.is_empty()
            && !matches!(
                self.ty,
                ChType::Nullable(_) | ChType::Array(_) | ChType::Map(..)
            )
    }
}

/// The table the sink writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Database name.
    pub database: String,
    /// Table name.
    pub name: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
}

impl TableInfo {
    /// `` `db`.`table` ``.
    pub fn qualified(&self) -> String {
        qualified(&self.database, &self.name)
    }

    /// Reads `DESCRIBE TABLE ... FORMAT JSONEachRow` output.
    pub fn from_describe(
        database: &str,
        name: &str,
        json_lines: &str,
    ) -> Result<TableInfo, String> {
        let mut columns = Vec::new();
        for line in json_lines.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("unreadable DESCRIBE TABLE output ({e}): {line}"))?;
            let text = |key: &str| row.get(key).and_then(|v| v.as_str()).unwrap_or_default();
            let type_name = text("type").to_owned();
            columns.push(Column {
                name: text("name").to_owned(),
                ty: ChType::parse(&type_name),
                type_name,
                default_kind: text("default_type").to_ascii_uppercase(),
            });
        }
        if columns.is_empty() {
            return Err(format!(
                "DESCRIBE TABLE {} returned no columns",
                qualified(database, name)
            ));
        }
        Ok(TableInfo {
            database: database.to_owned(),
            name: name.to_owned(),
            columns,
        })
    }

    /// How records of `schema` map onto the columns, or every reason they
    /// cannot (a field without a column, a type that cannot be converted, a
    /// required column no field provides).
    pub fn plan(&self, schema: &Schema) -> Result<Plan, String> {
        let mut problems = Vec::new();
        let mut pairs = Vec::with_capacity(schema.len());
        for (field_index, field) in schema.fields().iter().enumerate() {
            let Some(column_index) = self.columns.iter().position(|c| c.name == field.name) else {
                problems.push(format!(
                    "field `{}` has no column in {} (columns: {})",
                    field.name,
                    self.qualified(),
                    self.column_names()
                ));
                continue;
            };
            let column = &self.columns[column_index];
            if let Some(problem) = field_problem(field, column) {
                problems.push(problem);
                continue;
            }
            pairs.push((column_index, field_index));
        }
        for column in self.columns.iter().filter(|c| c.required()) {
            if schema.index_of(&column.name).is_none() {
                problems.push(format!(
                    "column `{}` ({}) has no default and the records have no field `{}`",
                    column.name, column.type_name, column.name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        pairs.sort_unstable();
        Ok(Plan { pairs })
    }

    /// Columns that no record can ever fill: required, but of a type the
    /// sink cannot write.
    pub fn unwritable_required(&self) -> Vec<&Column> {
        self.columns
            .iter()
            .filter(|c| c.required() && c.ty.unsupported_part().is_some())
            .collect()
    }

    fn column_names(&self) -> String {
        let names: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.insertable())
            .map(|c| c.name.as_str())
            .collect();
        names.join(", ")
    }

    /// `INSERT INTO db.t (c1, c2) FORMAT RowBinary` for the given columns.
    pub fn insert_sql(&self, columns: &[usize]) -> String {
        let names: Vec<String> = columns
            .iter()
            .map(|&i| quote_ident(&self.columns[i].name))
            .collect();
        format!(
            "INSERT INTO {} ({}) FORMAT RowBinary",
            self.qualified(),
            names.join(", ")
        )
    }
}

/// Why `field` cannot go into `column`, if it cannot.
fn field_problem(field: &Field, column: &Column) -> Option<String> {
    if !column.insertable() {
        return Some(format!(
            "column `{}` is {} and cannot be written",
            column.name, column.default_kind
        ));
    }
    if let Some(part) = column.ty.unsupported_part() {
        return Some(format!(
            "column `{}` has type {}, which the sink cannot write ({part})",
            column.name, column.type_name
        ));
    }
    if !column.ty.accepts(&field.data_type) {
        return Some(format!(
            "field `{}` ({}) cannot be written to column `{}` of type {}",
            field.name, field.data_type, column.name, column.type_name
        ));
    }
    None
}

/// `` `db`.`table` ``.
pub fn qualified(database: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(database), quote_ident(table))
}

/// Field-to-column pairs for one record schema, by column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (column index, field index), sorted by column.
    pub pairs: Vec<(usize, usize)>,
}

/// `CREATE TABLE IF NOT EXISTS` for `schema`. A MergeTree-family engine
/// without an `ORDER BY`/`PRIMARY KEY` in the suffix gets `ORDER BY tuple()`
/// (no sorting key), which every MergeTree requires.
pub fn create_table_sql(
    database: &str,
    table: &str,
    schema: &Schema,
    engine: &str,
    suffix: Option<&str>,
    server: &ServerInfo,
) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", quote_ident(&f.name), column_type_for(f, server)))
        .collect();
    let mut tail = suffix.unwrap_or("").trim().to_owned();
    let upper = tail.to_ascii_uppercase();
    if engine.contains("MergeTree") && !upper.contains("ORDER BY") && !upper.contains("PRIMARY KEY")
    {
        tail = format!("ORDER BY tuple() {tail}").trim().to_owned();
    }
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = {}",
        qualified(database, table),
        columns.join(", "),
        engine.trim()
    );
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(&tail);
    }
    sql
}

/// One insert's worth of encoded rows.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Indices of the columns named in the insert, in table order.
    pub columns: Vec<usize>,
    /// RowBinary rows.
    pub body: Vec<u8>,
    /// Rows in `body`.
    pub rows: usize,
    /// Records left out: (index in the input, reason).
    pub bad: Vec<(usize, String)>,
}

/// Encodes records for one table, remembering the plan of each schema seen.
#[derive(Debug)]
pub struct Encoder {
    table: Arc<TableInfo>,
    plans: Vec<CachedPlan>,
}

/// A schema and its plan (or why it has none).
type CachedPlan = (Arc<Schema>, Result<Arc<Plan>, String>);

/// Schemas whose plans are remembered; sources use one or a few.
const PLAN_CACHE: usize = 16;

impl Encoder {
    /// An encoder for `table`.
    pub fn new(table: Arc<TableInfo>) -> Self {
        Encoder {
            table,
            plans: Vec::new(),
        }
    }

    /// The table written to.
    pub fn table(&self) -> &Arc<TableInfo> {
        &self.table
    }

    fn plan_for(&mut self, schema: &Arc<Schema>) -> Result<Arc<Plan>, String> {
        if let Some(i) = self
            .plans
            .iter()
            .position(|(s, _)| Arc::ptr_eq(s, schema) || **s == **schema)
        {
            if i > 0 {
                // Keep the most recent schema first: it is the likely next one.
                let entry = self.plans.remove(i);
                self.plans.insert(0, entry);
            }
            return self.plans[0].1.clone();
        }
        let plan = self.table.plan(schema).map(Arc::new);
        self.plans.insert(0, (schema.clone(), plan.clone()));
        self.plans.truncate(PLAN_CACHE);
        plan
    }

    /// Encodes `records` as RowBinary for one insert. Records whose schema
    /// does not fit the table, or with a value that does not fit its
    /// column, are left out and listed in [`Encoded::bad`].
    pub fn encode(&mut self, records: &[Record]) -> Encoded {
        let mut out = Encoded::default();
        // Plans of the distinct schemas in this batch, and each record's plan.
        let mut plans: Vec<Arc<Plan>> = Vec::new();
        let mut record_plan: Vec<Option<usize>> = Vec::with_capacity(records.len());
        let mut last: Option<(&Arc<Schema>, usize)> = None;
        for (i, record) in records.iter().enumerate() {
            if let Some((schema, p)) = last
                && Arc::ptr_eq(schema, &record.schema)
            {
                record_plan.push(Some(p));
                continue;
            }
            match self.plan_for(&record.schema) {
                Ok(plan) => {
                    let p = match plans.iter().position(|q| Arc::ptr_eq(q, &plan)) {
                        Some(p) => p,
                        None => {
                            plans.push(plan);
                            plans.len() - 1
                        }
                    };
                    last = Some((&record.schema, p));
                    record_plan.push(Some(p));
                }
                Err(reason) => {
                    last = None;
                    out.bad.push((i, reason));
                    record_plan.push(None);
                }
            }
        }
        if plans.is_empty() {
            return out;
        }
        // Columns named by the insert: every column some schema provides.
        let mut columns: Vec<usize> = plans
            .iter()
            .flat_map(|p| p.pairs.iter().map(|&(c, _)| c))
            .collect();
        columns.sort_unstable();
        columns.dedup();
        // For each plan, the field (if any) behind each insert column.
        let layouts: Vec<Vec<Option<usize>>> = plans
            .iter()
            .map(|plan| {
                columns
                    .iter()
                    .map(|c| {
                        plan.pairs
                            .binary_search_by_key(c, |&(col, _)| col)
                            .ok()
                            .map(|i| plan.pairs[i].1)
                    })
                    .collect()
            })
            .collect();
        let table = self.table.clone();
        let types: Vec<&Column> = columns.iter().map(|&c| &table.columns[c]).collect();
        out.body.reserve(records.len() * 16 * columns.len());
        for (i, (record, plan)) in records.iter().zip(&record_plan).enumerate() {
            let Some(plan) = plan else { continue };
            let row_start = out.body.len();
            let mut failed = None;
            for (column, field) in types.iter().zip(&layouts[*plan]) {
                let written = match field {
                    Some(f) => write_value(&mut out.body, &column.ty, &record.values[*f]),
                    None => {
                        write_default(&mut out.body, &column.ty);
                        Ok(())
                    }
                };
                if let Err(reason) = written {
                    failed = Some(format!(
                        "column `{}` ({}): {reason}",
                        column.name, column.type_name
                    ));
                    break;
                }
            }
            match failed {
                Some(reason) => {
                    out.body.truncate(row_start);
                    out.bad.push((i, reason));
                }
                None => out.rows += 1,
            }
        }
        out.columns = columns;
        out.bad.sort_unstable_by_key(|(i, _)| *i);
        out
    }
}

#[cfg(test)]
mod tests {
    use connector_core::{DataType, Value};

    use super::*;
    use crate::server::Version;

    fn table(columns: &[(&str, &str, &str)]) -> TableInfo {
        TableInfo {
            database: "db".into(),
            name: "t".into(),
            columns: columns
                .iter()
                .map(|(name, ty, default)| Column {
                    name: (*name).into(),
                    ty: ChType::parse(ty),
                    type_name: (*ty).into(),
                    default_kind: (*default).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn plan_reports_every_problem() {
        let t = table(&[
            ("id", "Int64", ""),
            ("name", "String", ""),
            ("n", "Nullable(Int64)", ""),
            ("at", "DateTime", "DEFAULT"),
            ("m", "Int64", "MATERIALIZED"),
        ]);
        let schema = Schema::new(vec![
            Field::required("id", DataType::Array(Box::new(DataType::Int64))),
            Field::new("extra", DataType::String),
            Field::new("m", DataType::Int64),
        ]);
        let err = t.plan(&schema).unwrap_err();
        assert_eq!(
            err,
            "field `id` (array<int64>) cannot be written to column `id` of type Int64; \
             field `extra` has no column in `db`.`t` (columns: id, name, n, at); \
             column `m` is MATERIALIZED and cannot be written; \
             column `name` (String) has no default and the records have no field `name`"
        );
        let ok = Schema::new(vec![
            Field::new("name", DataType::String),
            Field::new("id", DataType::Int64),
        ]);
        assert_eq!(t.plan(&ok).unwrap().pairs, vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn encodes_mixed_schemas_and_leaves_out_bad_rows() {
        let t = Arc::new(table(&[("a", "UInt8", ""), ("b", "Nullable(String)", "")]));
        let mut encoder = Encoder::new(t);
        let with_b = Record::from_pairs([("a", Value::Int64(1)), ("b", Value::from("x"))]);
        let only_a = Record::from_pairs([("a", Value::Int64(2))]);
        let too_big = Record::from_pairs([("a", Value::Int64(256))]);
        let unknown = Record::from_pairs([("zzz", Value::Int64(1))]);
        let encoded = encoder.encode(&[with_b, too_big, only_a, unknown]);
        assert_eq!(encoded.columns, vec![0, 1]);
        assert_eq!(encoded.rows, 2);
        assert_eq!(encoded.body, vec![1, 0, 1, b'x', 2, 1]);
        assert_eq!(encoded.bad.len(), 2);
        assert_eq!(encoded.bad[0].0, 1);
        assert_eq!(
            encoded.bad[0].1,
            "column `a` (UInt8): 256 is out of the UInt8 range"
        );
        assert_eq!(encoded.bad[1].0, 3);
        assert!(encoded.bad[1].1.starts_with("field `zzz` has no column"));
    }

    #[test]
    fn create_statement_follows_the_server() {
        let schema = Schema::new(vec![
            Field::required("id", DataType::Int64),
            Field::new("at", DataType::Timestamp),
            Field::new("tags", DataType::Array(Box::new(DataType::String))),
            Field::required("ok", DataType::Boolean),
        ]);
        let old = ServerInfo {
            version: Version::parse("18.16.1").unwrap(),
            dedup_token: false,
            logs_queries: false,
            async_inserts: false,
        };
        assert_eq!(
            create_table_sql("db", "t", &schema, "MergeTree", None, &old),
            "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` Nullable(DateTime('UTC')), \
             `tags` Array(Nullable(String)), `ok` UInt8) ENGINE = MergeTree ORDER BY tuple()"
        );
        let new = ServerInfo {
            version: Version::parse("24.3.1").unwrap(),
            ..old
        };
        assert_eq!(
            create_table_sql(
                "db",
                "t",
                &schema,
                "ReplacingMergeTree",
                Some("ORDER BY id"),
                &new
            ),
            "CREATE TABLE IF NOT EXISTS `db`.`t` (`id` Int64, `at` Nullable(DateTime64(6, 'UTC')), \
             `tags` Array(Nullable(String)), `ok` Bool) ENGINE = ReplacingMergeTree ORDER BY id"
        );
    }
}
