//! `berth push`, `save`, `load`, `import`: images in and out of the store.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};

use anyhow::Context;
use berth_image::push::{self, PushEvent, PushProgress};
use berth_image::store::ImageStore;
use berth_image::{archive, Reference};

use super::images::short_id;
use crate::cli::{ImportArgs, LoadArgs, PushArgs, SaveArgs};

/// Docker's push lines: `<id>: Pushed`, `<id>: Layer already exists`.
struct PushLines {
    quiet: bool,
}

impl PushProgress for PushLines {
    fn event(&self, event: PushEvent) {
        if self.quiet {
            return;
        }
        match event {
            PushEvent::Exists { digest } => {
                println!("{}: Layer already exists", short_id(digest.as_str()))
            }
            PushEvent::Uploading { digest, .. } => {
                println!("{}: Preparing", short_id(digest.as_str()))
            }
            PushEvent::Pushed { digest } => println!("{}: Pushed", short_id(digest.as_str())),
            PushEvent::Manifest { .. } => {}
        }
    }
}

pub async fn push(store: &ImageStore, args: &PushArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.reference)?;
    store.resolve(&reference.to_string())?;
    if !args.quiet {
        println!(
            "The push refers to repository [{}]",
            reference.repository_name()
        );
    }
    let client = store.registry_client()?;
    let progress = PushLines { quiet: args.quiet };
    let digest = push::push_with_progress(store, &client, &reference, &progress).await?;
    let size = std::fs::metadata(store.blob_path(&digest)).map_or(0, |m| m.len());
    let tag = reference
        .tag
        .clone()
        .unwrap_or_else(|| reference.manifest_key());
    if args.quiet {
        println!("{reference}");
    } else {
        println!("{tag}: digest: {digest} size: {size}");
    }
    Ok(())
}

pub fn save(store: &ImageStore, args: &SaveArgs) -> anyhow::Result<()> {
    let refs: Vec<&str> = args.images.iter().map(String::as_str).collect();
    match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            archive::save(store, &refs, &mut out)?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut out = BufWriter::new(stdout.lock());
            archive::save(store, &refs, &mut out)?;
            out.flush().context("writing to stdout")?;
        }
    }
    Ok(())
}

fn input(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Read>> {
    Ok(match path {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    })
}

pub fn load(store: &ImageStore, args: &LoadArgs) -> anyhow::Result<()> {
    let mut reader = input(args.input.as_deref())?;
    let names = archive::load(store, &mut reader)?;
    if !args.quiet {
        for name in names {
            // untagged entries come back as their id
            if name.starts_with("sha256:") {
                println!("Loaded image ID: {name}");
            } else {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(())
}

pub fn import(store: &ImageStore, args: &ImportArgs) -> anyhow::Result<()> {
    if args.file.contains("://") {
        anyhow::bail!("importing from a URL is not supported: download the file first");
    }
    if args.message.is_some() || args.platform.is_some() {
        eprintln!("berth: warning: import ignores --message and --platform");
    }
    let name = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let path = (args.file != "-").then(|| std::path::PathBuf::from(&args.file));
    let mut reader = input(path.as_deref())?;
    let record = archive::import(store, &mut reader, name.as_ref(), &args.change)?;
    let manifest = store.manifest(&record)?;
    println!("{}", manifest.config().digest());
    Ok(())
}
