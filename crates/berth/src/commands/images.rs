//! `berth images` / `berth image ls`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use berth_image::store::{ImageRecord, ImageStore};
use berth_image::Reference;
use serde_json::json;

use crate::cli::ImagesArgs;
use crate::format;

/// One image name, with what the listing shows about it.
pub struct Summary {
    /// config digest (`sha256:…`)
    pub id: String,
    /// familiar repository (`busybox`) or `<none>`
    pub repository: String,
    /// tag or `<none>`
    pub tag: String,
    /// RepoDigest's digest or `<none>`
    pub digest: String,
    /// image config `created`
    pub created: Option<String>,
    /// bytes of the unpacked layers
    pub size: u64,
}

/// Everything the store lists, newest first.
fn summaries(store: &ImageStore) -> anyhow::Result<Vec<Summary>> {
    let mut out = Vec::new();
    // images sharing an id share their config and size: read them once
    let mut seen: std::collections::HashMap<String, (Option<String>, u64)> = Default::default();
    for record in store.list().context("listing images")? {
        let id = record.id.to_string();
        let (created, size) = match seen.get(&id) {
            Some(known) => known.clone(),
            None => {
                let config = store
                    .config(&record)
                    .with_context(|| format!("reading the config of image {id}"))?;
                let size = image_size(store, &record);
                seen.insert(id.clone(), (config.created().clone(), size));
                (config.created().clone(), size)
            }
        };
        // a dangling image (empty name) shows as `<none>  <none>`
        let (repository, tag) = match Reference::parse(&record.name) {
            Ok(reference) => (
                reference.familiar_name(),
                reference.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            Err(_) => ("<none>".to_owned(), "<none>".to_owned()),
        };
        out.push(Summary {
            id,
            repository,
            tag,
            digest: record
                .repo_digest
                .as_ref()
                .map_or_else(|| "<none>".to_owned(), |d| d.to_string()),
            created,
            size,
        });
    }
    out.sort_by(|a, b| {
        let time = |s: &Summary| {
            s.created
                .as_deref()
                .and_then(format::parse_rfc3339)
                .unwrap_or(0)
        };
        time(b)
            .cmp(&time(a))
            .then_with(|| a.repository.cmp(&b.repository))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    Ok(out)
}

/// Bytes of an image's unpacked layers (0 when they cannot be listed).
pub fn image_size(store: &ImageStore, record: &ImageRecord) -> u64 {
    store
        .layer_dirs(record)
        .map(|dirs| dirs.iter().map(|d| disk_usage(d)).sum())
        .unwrap_or(0)
}

/// Bytes used by the regular files under `dir` (what Docker calls the size
/// of a layer).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Short image id: 12 hex digits without the algorithm.
pub fn short_id(id: &str) -> String {
    id.split_once(':')
        .map_or(id, |(_, hex)| hex)
        .chars()
        .take(12)
        .collect()
}

pub fn run(store: &ImageStore, args: &ImagesArgs) -> anyhow::Result<()> {
    let mut rows = summaries(store)?;
    if let Some(filter) = &args.repository {
        let (repo, tag) = split_filter(filter);
        rows.retain(|s| s.repository == repo && tag.as_deref().is_none_or(|t| s.tag == t));
    }
    let id = |s: &Summary| {
        if args.no_trunc {
            s.id.clone()
        } else {
            short_id(&s.id)
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        for summary in &rows {
            if seen.insert(summary.id.clone()) {
                println!("{}", id(summary));
            }
        }
        return Ok(());
    }
    let values: Vec<serde_json::Value> = rows.iter().map(|s| row_json(s, &id(s))).collect();
    match args.format.as_deref().map(str::trim) {
        None | Some("") | Some("table") => {
            print!("{}", default_table(&rows, &values, args.digests))
        }
        Some("json") => {
            for value in &values {
                println!("{value}");
            }
        }
        Some(template) => {
            let (header, template) = match template.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, template),
            };
            if header {
                println!("{}", format::template(template, &header_json()));
            }
            for value in &values {
                println!("{}", format::template(template, value));
            }
        }
    }
    Ok(())
}

fn split_filter(filter: &str) -> (String, Option<String>) {
    match Reference::parse(filter) {
        Ok(r)
            if filter
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':')) =>
        {
            (r.familiar_name(), r.tag.clone())
        }
        Ok(r) => (r.familiar_name(), None),
        Err(_) => (filter.to_owned(), None),
    }
}

/// Docker's `--format json` keys.
fn row_json(s: &Summary, id: &str) -> serde_json::Value {
    json!({
        "Containers": "N/A",
        "CreatedAt": s.created.clone().unwrap_or_default(),
        "CreatedSince": format::since(s.created.as_deref()),
        "Digest": s.digest,
        "ID": id,
        "Repository": s.repository,
        "SharedSize": "N/A",
        "Size": format::human_size(s.size),
        "Tag": s.tag,
        "UniqueSize": "N/A",
        "VirtualSize": format::human_size(s.size),
    })
}

fn header_json() -> serde_json::Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY", "SharedSize": "SHARED SIZE",
        "Size": "SIZE", "Tag": "TAG", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

fn default_table(rows: &[Summary], values: &[serde_json::Value], digests: bool) -> String {
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .zip(values)
        .map(|(s, v)| {
            let mut row = vec![s.repository.clone(), s.tag.clone()];
            if digests {
                row.push(s.digest.clone());
            }
            row.extend([field(v, "ID"), field(v, "CreatedSince"), field(v, "Size")]);
            row
        })
        .collect();
    let header: &[&str] = if digests {
        &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    };
    format::table(header, &table_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_filters() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(split_filter("busybox"), ("busybox".to_owned(), None));
        assert_eq!(
            split_filter("busybox:1.36"),
            ("busybox".to_owned(), Some("1.36".to_owned()))
        );
        assert_eq!(
            split_filter("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x".to_owned(), None)
        );
    }
}
