//! `berth tag SOURCE TARGET`.

use berth_image::store::ImageStore;
use berth_image::Reference;

use crate::cli::TagArgs;

pub fn run(store: &ImageStore, args: &TagArgs) -> anyhow::Result<()> {
    let target = Reference::parse(&args.target)?;
    if target.digest.is_some() {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    store.tag(&args.source, &target)?;
    Ok(())
}
