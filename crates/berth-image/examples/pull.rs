//! `pull --data-root DIR REF`: pull one image with [`ImageStore::pull`] and
//! print its id and the wall time (for `bench/pull.sh` until the `berth`
//! CLI's pull exists, and for profiling the pipeline on its own).

use std::time::Instant;

use berth_image::store::{NoProgress, Platform, StoreConfig};
use berth_image::{ImageStore, Reference};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root, reference) = match args.as_slice() {
        [flag, root, reference] if flag == "--data-root" => (root.clone(), reference.clone()),
        _ => return Err("usage: pull --data-root DIR REF".into()),
    };
    let start = Instant::now();
    let store = ImageStore::open(StoreConfig {
        data_root: root.into(),
        registry: Default::default(),
    })?;
    let record = store
        .pull(
            &Reference::parse(&reference)?,
            &Platform::host(),
            &NoProgress,
        )
        .await
        .map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            msg
        })?;
    eprintln!("{} {} in {:?}", record.name, record.id, start.elapsed());
    Ok(())
}
