use keel::container::{self, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// container id
    pub id: String,
    /// options for ps(1) (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(ctx: &Context, a: Args) -> anyhow::Result<i32> {
    container::ps(
        ctx,
        &a.id,
        a.format == "json",
        &a.ps_args,
        &mut std::io::stdout().lock(),
    )?;
    Ok(0)
}
