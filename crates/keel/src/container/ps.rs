//! `ps [-f json] ID [ps options]`: the host's `ps`, filtered to the
//! container's cgroup, as runc does.

use std::io::Write;

use super::{Context, Error};

/// `keel ps`; `json` prints the pid array.
pub fn ps(
    ctx: &Context,
    id: &str,
    json: bool,
    ps_args: &[String],
    out: &mut dyn Write,
) -> Result<(), Error> {
    let dir = ctx.root.open(id)?;
    let st = dir.load()?;
    let pids = match &st.cgroup {
        Some(m) => m.pids()?,
        None => Vec::new(),
    };
    drop(dir);
    let w = |r: std::io::Result<()>| r.map_err(Error::io("write"));
    if json {
        return w(writeln!(out, "{}", serde_json::json!(pids)));
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(Error::io("cannot run ps"))?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Invalid("ps output has no PID column".into()))?;
    w(writeln!(out, "{header}"))?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            w(writeln!(out, "{line}"))?;
        }
    }
    Ok(())
}
