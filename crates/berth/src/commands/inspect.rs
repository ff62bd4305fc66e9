//! `berth image inspect`: Docker's JSON shape for images.

use anyhow::Context;
use berth_image::store::ImageStore;
use berth_image::Reference;
use serde_json::{json, Map, Value};

use super::images::image_size;
use crate::cli::InspectArgs;
use crate::format;

pub fn run(store: &ImageStore, args: &InspectArgs) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        match inspect(store, name) {
            Ok(value) => found.push(value),
            Err(err) => missing.push(format!("{err:#}")),
        }
    }
    match args.format.as_deref() {
        None => println!("{}", format::pretty_json(&Value::Array(found))),
        Some("json") => {
            for value in &found {
                println!("{value}");
            }
        }
        Some(template) => {
            for value in &found {
                println!("{}", format::template(template, value));
            }
        }
    }
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("\n"));
    }
    Ok(())
}

/// The inspect document of one image.
pub fn inspect(store: &ImageStore, name: &str) -> anyhow::Result<Value> {
    let record = store.resolve(name)?;
    let config = store.config(&record).context("reading the image config")?;
    let id = record.id.to_string();
    let mut repo_tags = Vec::new();
    let mut repo_digests = Vec::new();
    let mut same_image = store.list()?;
    same_image.retain(|r| r.id == record.id);
    same_image.sort_by(|a, b| a.name.cmp(&b.name));
    for other in same_image {
        let Ok(reference) = Reference::parse(&other.name) else {
            continue;
        };
        if reference.tag.is_some() {
            repo_tags.push(reference.familiar());
        }
        if let Some(digest) = &other.repo_digest {
            let entry = format!("{}@{}", reference.familiar_name(), digest);
            if !repo_digests.contains(&entry) {
                repo_digests.push(entry);
            }
        }
    }
    let size = image_size(store, &record);
    let image_config = config.config().clone().unwrap_or_default();
    let as_set = |list: &Option<Vec<String>>| {
        list.as_ref().map(|items| {
            Value::Object(
                items
                    .iter()
                    .map(|k| (k.clone(), json!({})))
                    .collect::<Map<_, _>>(),
            )
        })
    };
    let mut doc = json!({
        "Id": id,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.history().as_ref().and_then(|h| h.last()).and_then(|h| h.comment().clone()).unwrap_or_default(),
        "Created": config.created().clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": config.author().clone().unwrap_or_default(),
        "Config": {
            "Hostname": "",
            "Domainname": "",
            "User": image_config.user().clone().unwrap_or_default(),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "ExposedPorts": as_set(image_config.exposed_ports()),
            "Tty": false,
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": image_config.env(),
            "Cmd": image_config.cmd(),
            "Image": "",
            "Volumes": as_set(image_config.volumes()),
            "WorkingDir": image_config.working_dir().clone().unwrap_or_default(),
            "Entrypoint": image_config.entrypoint(),
            "OnBuild": null,
            "Labels": image_config.labels(),
            "StopSignal": image_config.stop_signal(),
        },
        "Architecture": config.architecture().to_string(),
        "Os": config.os().to_string(),
        "Size": size,
        "GraphDriver": {
            "Data": {
                "LowerDir": store.layer_dirs(&record).map(|dirs| {
                    dirs.iter().rev().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
                }).unwrap_or_default(),
            },
            "Name": "overlay2",
        },
        "RootFS": {
            "Type": config.rootfs().typ(),
            "Layers": config.rootfs().diff_ids(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    });
    if let Some(variant) = config.variant() {
        doc["Variant"] = json!(variant);
    }
    if image_config.stop_signal().is_none() {
        if let Some(config) = doc["Config"].as_object_mut() {
            config.remove("StopSignal");
        }
    }
    Ok(doc)
}
