//! Output helpers shared by the commands: Docker's human sizes and ages,
//! column tables, and `--format` templates (`{{.Field}}`, `{{json .}}`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// `4.26MB`: decimal units, 3 significant digits, as `docker images`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{size:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

/// `3 weeks`: the age wording of `docker images`' CREATED column.
pub fn human_duration(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match seconds {
        0 => "Less than a second".to_owned(),
        s if s < 60 => plural(s, "second"),
        s if s < 120 => "About a minute".to_owned(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 2 * 3600 => "About an hour".to_owned(),
        s if s < 48 * 3600 => plural(s / 3600, "hour"),
        s if s < 7 * 24 * 3600 * 2 => plural(s / (24 * 3600), "day"),
        s if s < 30 * 24 * 3600 * 3 => plural(s / (7 * 24 * 3600), "week"),
        s if s < 365 * 24 * 3600 * 2 => plural(s / (30 * 24 * 3600), "month"),
        s => plural(s / (365 * 24 * 3600), "year"),
    }
}

/// `N units ago` for an RFC 3339 time, or `N/A`.
pub fn since(rfc3339: Option<&str>) -> String {
    let Some(then) = rfc3339.and_then(parse_rfc3339) else {
        return "N/A".to_owned();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format!(
        "{} ago",
        human_duration(now.saturating_sub(then).max(0) as u64)
    )
}

/// Seconds since the epoch of `2024-01-02T03:04:05[.frac](Z|±hh:mm)`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "Z"),
    };
    let clock = clock.split('.').next()?;
    let mut hms = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    let offset_seconds = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let (h, m) = offset[1..].split_once(':')?;
            let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
            if offset.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => 0,
    };
    Some(
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
            - offset_seconds,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Columns separated by at least three spaces, like Go's tabwriter in
/// the Docker CLI.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Render a `--format` template against `value`: `{{.Field}}`,
/// `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`; `\t` and `\n` escapes.
pub fn template(template: &str, value: &Value) -> String {
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let action = rest[start + 2..start + end].trim();
        out.push_str(&eval(action, value));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn eval(action: &str, value: &Value) -> String {
    let (json, path) = match action.strip_prefix("json ") {
        Some(path) => (true, path.trim()),
        None => (false, action),
    };
    let mut current = value;
    for field in path
        .trim_start_matches('.')
        .split('.')
        .filter(|f| !f.is_empty())
    {
        current = current.get(field).unwrap_or(&Value::Null);
    }
    match (json, current) {
        (true, v) => v.to_string(),
        (false, Value::String(s)) => s.clone(),
        (false, Value::Null) => "<no value>".to_owned(),
        (false, Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| eval("", i)).collect();
            format!("[{}]", parts.join(" "))
        }
        (false, Value::Object(map)) => {
            let sorted: BTreeMap<_, _> = map.iter().collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{k}:{}", eval("", v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        (false, v) => v.to_string(),
    }
}

/// JSON with four-space indentation, as `docker inspect`.
pub fn pretty_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return value.to_string();
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        let cases = [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (4_261_376, "4.26MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (1_500_000_000, "1.5GB"),
        ];
        for (bytes, text) in cases {
            assert_eq!(human_size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn durations_like_docker() {
        let cases = [
            (0, "Less than a second"),
            (5, "5 seconds"),
            (90, "About a minute"),
            (600, "10 minutes"),
            (5400, "About an hour"),
            (10 * 3600, "10 hours"),
            (3 * 86400, "3 days"),
            (21 * 86400, "3 weeks"),
            (120 * 86400, "4 months"),
            (800 * 86400, "2 years"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(secs), text, "{secs}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-09-26T21:31:42.123456789Z"),
            Some(1_727_386_302)
        );
        assert_eq!(
            parse_rfc3339("2024-09-26T23:31:42+02:00"),
            Some(1_727_386_302)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(since(None), "N/A");
    }

    #[test]
    fn tables_and_templates() {
        let out = table(&["A", "BB"], &[vec!["xxxx".into(), "y".into()]]);
        assert_eq!(out, "A      BB\nxxxx   y\n");
        let value = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh"]}});
        assert_eq!(
            template("{{.Repository}}:{{.Tag}}", &value),
            "busybox:latest"
        );
        assert_eq!(template("{{json .Config.Cmd}}", &value), "[\"sh\"]");
        assert_eq!(
            template("{{.Config.Cmd}}\\t{{.Nope}}", &value),
            "[sh]\t<no value>"
        );
    }
}
