//! `berth rmi`, `berth image prune`.

use std::io::{BufRead, Write};

use berth_image::bundle;
use berth_image::store::{ImageStore, Removed};
use berth_image::{Digest, Reference};

use super::images::{disk_usage, short_id};
use crate::cli::{PruneArgs, RmiArgs};
use crate::format;

fn print_removed(removed: &[Removed]) {
    for entry in removed {
        match entry {
            Removed::Untagged(name) => println!("Untagged: {name}"),
            Removed::Deleted(digest) => println!("Deleted: {digest}"),
        }
    }
}

/// Refuse to delete an image a bundle's rootfs still mounts (untagging
/// one of several names is fine).
fn check_not_in_use(store: &ImageStore, image: &str) -> anyhow::Result<()> {
    let record = store.resolve(image)?;
    let names = store
        .list()?
        .into_iter()
        .filter(|r| r.id == record.id)
        .count();
    let by_name = Reference::parse(image).is_ok_and(|r| r.to_string() == record.name);
    if by_name && names > 1 {
        return Ok(());
    }
    let id = record.id.to_string();
    if let Some(user) = bundle::live_bundles(store)
        .into_iter()
        .find(|b| b.image_id == id)
    {
        anyhow::bail!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by bundle {} ({}): run `berth unbundle` first",
            short_id(&id),
            user.dir.display(),
            short_id(&user.id)
        );
    }
    Ok(())
}

pub fn rmi(store: &ImageStore, args: &RmiArgs) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for image in &args.images {
        if let Err(err) = check_not_in_use(store, image) {
            errors.push(format!("{err:#}"));
            continue;
        }
        match store.remove(image, args.force) {
            Ok(removed) => print_removed(&removed),
            Err(err) => errors.push(err.to_string()),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\n"));
    }
    Ok(())
}

pub fn prune(store: &ImageStore, args: &PruneArgs) -> anyhow::Result<()> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let before = disk_usage(store.data_root());
    let in_use: Vec<Digest> = bundle::live_bundles(store)
        .iter()
        .filter_map(|b| b.image_id.parse().ok())
        .collect();
    let removed = store.prune_except(args.all, &in_use)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        print_removed(&removed);
        println!();
    }
    let reclaimed = before.saturating_sub(disk_usage(store.data_root()));
    println!("Total reclaimed space: {}", format::human_size(reclaimed));
    Ok(())
}
