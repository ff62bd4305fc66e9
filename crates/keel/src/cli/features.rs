use std::io::Write;

pub fn run() -> anyhow::Result<i32> {
    let v = keel::container::features();
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&v)?
    )?;
    Ok(0)
}
