//! `berth pull`: per-layer progress bars on a terminal, Docker's plain
//! status lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_image::store::{ImageStore, Platform, PullEvent, PullProgress};
use berth_image::{Digest, Reference};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::PullArgs;

pub async fn run(store: &ImageStore, args: &PullArgs) -> anyhow::Result<()> {
    if args.all_tags {
        anyhow::bail!("pull --all-tags is not supported yet");
    }
    let reference = Reference::parse(&args.reference)?;
    let platform = match &args.platform {
        Some(text) => parse_platform(text)?,
        None => Platform::host(),
    };
    if !args.quiet {
        if !args.reference.contains(':') && !args.reference.contains('@') {
            println!("Using default tag: latest");
        }
        let what = reference
            .tag
            .clone()
            .unwrap_or_else(|| reference.manifest_key());
        println!("{what}: Pulling from {}", reference.repository);
    }
    let existed = store.resolve(&reference.to_string()).ok();
    let progress: Box<dyn Reporter> = if args.quiet {
        Box::new(Quiet)
    } else if std::io::stdout().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines::default())
    };
    let adapter = Adapter(progress.as_ref());
    let record = store.pull(&reference, &platform, &adapter).await?;
    progress.finish();
    if !args.quiet {
        let digest = record
            .repo_digest
            .as_ref()
            .map_or_else(|| record.target.digest().to_string(), Digest::to_string);
        println!("Digest: {digest}");
        let up_to_date = existed.is_some_and(|old| old.target.digest() == record.target.digest());
        if up_to_date && !progress.downloaded() {
            println!("Status: Image is up to date for {}", reference.familiar());
        } else {
            println!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            );
        }
    }
    println!("{reference}");
    Ok(())
}

/// `os/arch[/variant]` (`linux/amd64`, `linux/arm/v7`); `arch` alone means linux.
pub fn parse_platform(text: &str) -> anyhow::Result<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [arch] => ("linux", *arch, None),
        [os, arch] => (*os, *arch, None),
        [os, arch, variant] => (*os, *arch, Some((*variant).to_owned())),
        _ => anyhow::bail!("invalid platform {text:?}: expected os/arch[/variant]"),
    };
    if os.is_empty() || arch.is_empty() {
        anyhow::bail!("invalid platform {text:?}: expected os/arch[/variant]");
    }
    let arch = match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Ok(Platform {
        os: os.to_ascii_lowercase(),
        architecture: arch.to_owned(),
        variant,
    })
}

/// The 12 hex digits Docker shows for a layer.
fn layer_id(digest: &Digest) -> String {
    digest.encoded().chars().take(12).collect()
}

/// Shows pull progress one way or another.
trait Reporter: Send + Sync {
    fn event(&self, event: PullEvent);
    fn finish(&self) {}
    /// whether any layer was downloaded
    fn downloaded(&self) -> bool;
}

struct Adapter<'a>(&'a dyn Reporter);

impl PullProgress for Adapter<'_> {
    fn event(&self, event: PullEvent) {
        self.0.event(event);
    }
}

struct Quiet;

impl Reporter for Quiet {
    fn event(&self, _: PullEvent) {}
    fn downloaded(&self) -> bool {
        true
    }
}

/// Plain lines, as `docker pull` prints when stdout is not a terminal.
#[derive(Default)]
struct Lines {
    downloaded: AtomicBool,
}

impl Reporter for Lines {
    fn event(&self, event: PullEvent) {
        let line = match event {
            PullEvent::Resolved { .. } | PullEvent::LayerProgress { .. } => return,
            PullEvent::LayerExists { digest } => format!("{}: Already exists", layer_id(&digest)),
            PullEvent::LayerStart { digest, .. } => {
                self.downloaded.store(true, Ordering::Relaxed);
                format!("{}: Pulling fs layer", layer_id(&digest))
            }
            PullEvent::LayerExtracting { digest } => {
                format!("{}: Download complete", layer_id(&digest))
            }
            PullEvent::LayerDone { digest } => format!("{}: Pull complete", layer_id(&digest)),
        };
        println!("{line}");
    }
    fn downloaded(&self) -> bool {
        self.downloaded.load(Ordering::Relaxed)
    }
}

/// One bar per layer: `<id>: Downloading [=====>    ] 12MB/30MB`.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    downloaded: AtomicBool,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(HashMap::new()),
            downloaded: AtomicBool::new(false),
        }
    }

    fn bar(&self, digest: &Digest) -> ProgressBar {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        bars.entry(digest.clone())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(status_style());
                bar.set_prefix(layer_id(digest));
                bar
            })
            .clone()
    }
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn download_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: Downloading [{bar:50}] {decimal_bytes}/{decimal_total_bytes}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Reporter for Bars {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved { .. } => {}
            PullEvent::LayerExists { digest } => {
                self.bar(&digest).finish_with_message("Already exists")
            }
            PullEvent::LayerStart { digest, total } => {
                self.downloaded.store(true, Ordering::Relaxed);
                let bar = self.bar(&digest);
                bar.set_length(total);
                bar.set_style(download_style());
            }
            PullEvent::LayerProgress {
                digest,
                done,
                total,
            } => {
                let bar = self.bar(&digest);
                bar.set_length(total);
                bar.set_position(done);
            }
            PullEvent::LayerExtracting { digest } => {
                let bar = self.bar(&digest);
                bar.set_style(status_style());
                bar.set_message("Extracting");
            }
            PullEvent::LayerDone { digest } => {
                let bar = self.bar(&digest);
                bar.set_style(status_style());
                bar.finish_with_message("Pull complete");
            }
        }
    }
    fn finish(&self) {
        let bars = self
            .bars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for bar in bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
        if !bars.is_empty() {
            // indicatif leaves the cursor at the end of the last bar
            println!();
        }
    }
    fn downloaded(&self) -> bool {
        self.downloaded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = parse_platform("linux/arm/v7").expect("arm");
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm", Some("v7"))
        );
        let p = parse_platform("linux/x86_64").expect("amd64");
        assert_eq!(p.architecture, "amd64");
        assert!(parse_platform("a/b/c/d").is_err());
        assert!(parse_platform("/amd64").is_err());
    }
}
