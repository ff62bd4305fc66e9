//! keel's log: `--log FILE` and `--log-format text|json`.
//!
//! runc writes logrus lines; containerd's shim reads the JSON form
//! (`{"level":"error","msg":"...","time":"..."}`, one object per line) to
//! report why a command failed, so the JSON shape is kept exactly. Without
//! `--log` nothing is written here: the binary prints its one-line error to
//! stderr itself.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Line format of the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `time="..." level=error msg="..."`
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`
    Json,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: File,
    format: Format,
    min: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Open `path` for appending and send every later log line there.
pub fn init(path: &Path, format: Format, debug: bool) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let min = if debug { Level::Debug } else { Level::Info };
    let _ = LOGGER.set(Logger { file, format, min });
    Ok(())
}

/// Whether debug lines would be written (to skip building them).
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.min == Level::Debug)
}

/// Write one line at `level` (a no-op without `--log`).
pub fn write(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    if level < l.min {
        return;
    }
    let line = format_line(l.format, level, msg, &rfc3339_now());
    // One write(2) per line so concurrent writers never interleave.
    let _ = (&l.file).write_all(line.as_bytes());
}

/// An error line.
pub fn error(msg: &str) {
    write(Level::Error, msg);
}

/// A warning line.
pub fn warn(msg: &str) {
    write(Level::Warn, msg);
}

/// A debug line; `msg` is only built when `--debug` is on.
pub fn debug(msg: impl FnOnce() -> String) {
    if debug_enabled() {
        write(Level::Debug, &msg());
    }
}

fn format_line(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({"level": level.name(), "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => {
            let quoted = serde_json::Value::String(msg.to_owned());
            format!("time=\"{time}\" level={} msg={quoted}\n", level.name())
        }
    }
}

/// The current UTC time as RFC 3339 with nanoseconds (`2024-01-02T03:04:05.123456789Z`).
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Format seconds since the epoch (UTC) as RFC 3339.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20.000000000Z");
    }

    #[test]
    fn json_line_has_runc_keys() {
        let line = format_line(Format::Json, Level::Error, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_line_quotes_message() {
        let line = format_line(Format::Text, Level::Warn, "a b", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
