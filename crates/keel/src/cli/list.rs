use keel::container::{self, Context, ListFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// ids only
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    let format = match (a.quiet, a.format.as_str()) {
        (true, _) => ListFormat::Quiet,
        (_, "json") => ListFormat::Json,
        _ => ListFormat::Table,
    };
    container::list(ctx, format, &mut std::io::stdout().lock())?;
    Ok(0)
}
