//! The command line, as clap types: Docker's command names and flags.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// A container engine: images, bundles and (soon) containers.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Root directory of persistent state (images, layers, metadata)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Daemon configuration file (daemon.json keys: data-root,
    /// insecure-registries, registry-mirrors)
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "/etc/berth/daemon.json"
    )]
    pub config: PathBuf,
    /// Enable debug output
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long, action = ArgAction::Version)]
    pub version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Make an OCI runtime bundle (config.json + overlay rootfs) from an image
    #[command(disable_help_flag = true)]
    Bundle(BundleArgs),
    /// Unmount and delete a bundle made by `berth bundle`
    Unbundle(UnbundleArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Download all tagged images in the repository (not supported)
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// NAME[:TAG|@DIGEST]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: `table`, `json`, `table TEMPLATE` or a Go-like
    /// template such as `{{.Repository}}:{{.Tag}}`
    #[arg(long)]
    pub format: Option<String>,
    /// [REPOSITORY[:TAG]]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents (accepted; there are none)
    #[arg(long)]
    pub no_prune: bool,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT,
    /// ENV, WORKDIR, USER, EXPOSE, VOLUME, LABEL, STOPSIGNAL)
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|- (URLs are not supported)
    pub file: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a template (`json` or `{{.Field}}`)
    #[arg(short, long)]
    pub format: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// [SERVER] (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// [SERVER] (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Overwrite the default ENTRYPOINT of the image ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set environment variables (NAME=value; NAME alone takes it from berth's environment)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Allocate a pseudo-TTY (process.terminal)
    #[arg(short, long)]
    pub tty: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Network mode: none (private namespace, loopback only) or host
    #[arg(long, default_value = "none")]
    pub network: String,
    /// Memory limit (bytes, or with a b, k, m, g suffix)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Container id recorded in the bundle (default: random)
    #[arg(long)]
    pub id: Option<String>,
    /// Print help (`-h` is --hostname, as in `docker run`)
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE
    pub image: String,
    /// DIR: the bundle directory (created; must be empty)
    pub dir: PathBuf,
    /// COMMAND [ARG...] replacing the image's Cmd
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnbundleArgs {
    /// DIR...
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bundle_takes_the_command_after_the_directory() {
        let cli = Cli::try_parse_from([
            "berth", "bundle", "-e", "A=1", "busybox", "/b", "sh", "-c", "id",
        ])
        .expect("parse");
        let Command::Bundle(args) = cli.command else {
            panic!("not bundle")
        };
        assert_eq!(args.image, "busybox");
        assert_eq!(args.command, ["sh", "-c", "id"]);
    }

    #[test]
    fn image_aliases() {
        for argv in [["berth", "image", "ls"], ["berth", "image", "list"]] {
            let cli = Cli::try_parse_from(argv).expect("parse");
            assert!(matches!(cli.command, Command::Image(ImageCommand::Ls(_))));
        }
    }
}
