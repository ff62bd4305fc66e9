//! `state ID` and `list`.

use std::io::Write;

use super::{Context, Error};

/// `keel state ID`: runc's JSON, pretty-printed.
pub fn state(ctx: &Context, id: &str) -> Result<String, Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    let v = super::state_object(&st, super::status(&st));
    Ok(serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// Output of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Quiet,
}

/// `keel list`, written to `out`.
pub fn list(ctx: &Context, format: ListFormat, out: &mut dyn Write) -> Result<(), Error> {
    let mut rows = Vec::new();
    for id in ctx.root.list()? {
        if id.starts_with(".keel") {
            continue;
        }
        // Skip containers vanishing (or being created) under us.
        let Ok(dir) = ctx.root.open(&id) else {
            continue;
        };
        let Ok(Some(st)) = dir.read() else { continue };
        let status = super::status(&st);
        rows.push(super::state_object(&st, status));
    }
    let w = |r: std::io::Result<()>| r.map_err(Error::io("write"));
    match format {
        ListFormat::Quiet => {
            for r in &rows {
                w(writeln!(out, "{}", r["id"].as_str().unwrap_or_default()))?;
            }
        }
        ListFormat::Json => {
            let v = if rows.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::Array(rows)
            };
            w(writeln!(out, "{v}"))?;
        }
        ListFormat::Table => {
            let cols = ["id", "pid", "status", "bundle", "created", "owner"];
            let mut cells: Vec<Vec<String>> =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()];
            for r in &rows {
                cells.push(
                    cols.iter()
                        .map(|c| match &r[*c] {
                            serde_json::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .collect(),
                );
            }
            let widths: Vec<usize> = (0..cols.len())
                .map(|i| cells.iter().map(|row| row[i].len()).max().unwrap_or(0))
                .collect();
            for row in cells {
                let mut line = String::new();
                for (i, c) in row.iter().enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(c);
                    } else {
                        line.push_str(&format!("{c:<w$}   ", w = widths[i]));
                    }
                }
                w(writeln!(out, "{}", line.trim_end()))?;
            }
        }
    }
    Ok(())
}
