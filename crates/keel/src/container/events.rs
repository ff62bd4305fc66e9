//! `events [--stats] [--interval D] ID`: JSON lines shaped like runc's
//! (`{"type":"stats","id":…,"data":{…}}`, `{"type":"oom","id":…}`).

use std::io::Write;
use std::time::Duration;

use super::{Context, Error, Status};

/// Print stats once (`stats`) or every `interval` until the container stops.
pub fn events(
    ctx: &Context,
    id: &str,
    stats: bool,
    interval: Duration,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let st = ctx.root.open(id)?.load()?;
    let manager = st
        .cgroup
        .clone()
        .ok_or_else(|| Error::Invalid(format!("container {id} has no cgroup")))?;
    let w = |out: &mut dyn Write, v: serde_json::Value| {
        writeln!(out, "{v}")
            .and_then(|()| out.flush())
            .map_err(Error::io("write"))
    };
    let mut ooms = manager.oom_kill_count().unwrap_or(0);
    loop {
        if super::status(&st) == Status::Stopped {
            return if stats {
                Err(super::not_running(id))
            } else {
                Ok(())
            };
        }
        let data = serde_json::to_value(manager.stats()?).unwrap_or_default();
        w(
            out,
            serde_json::json!({"type": "stats", "id": id, "data": data}),
        )?;
        if stats {
            return Ok(());
        }
        let now = manager.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            ooms = now;
            w(out, serde_json::json!({"type": "oom", "id": id}))?;
        }
        std::thread::sleep(interval);
    }
}

/// Parse a Go-style duration: `5s`, `500ms`, `1m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(
            super::parse_duration("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(super::parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(super::parse_duration("x"), None);
    }
}
