pub fn run() -> anyhow::Result<i32> {
    let v = keel::container::features();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
