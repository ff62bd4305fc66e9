//! `berth import`: a rootfs tarball becomes a one-layer image. The tarball
//! is decompressed once into a scratch file while its DiffID is computed;
//! the layer is stored uncompressed (its digest is its DiffID), the config
//! gets rootfs, history, os/architecture and the `--change` instructions.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use oci_spec::image::Descriptor;
use serde_json::{json, Map, Value};

use super::{descriptor, io_err, json_err, Error, ScratchDir, OCI_CONFIG, OCI_MANIFEST};
use crate::store::{ImageRecord, ImageStore, Platform};
use crate::unpack::{self, Compression, HashingReader};
use crate::{Digest, Reference};

pub(super) fn import(
    store: &ImageStore,
    input: &mut dyn Read,
    name: Option<&Reference>,
    changes: &[String],
) -> Result<ImageRecord, Error> {
    let mut container_config = Map::new();
    for change in changes {
        apply_change(&mut container_config, change)?;
    }
    let scratch = ScratchDir::new(store, "import")?;
    let layer_path = scratch.path().join("layer.tar");
    let (diff_id, size) = decompress_to(input, &layer_path)?;
    let layer = File::open(&layer_path).map_err(io_err("reopen the imported layer"))?;
    store.ingest_blob(&diff_id, &mut BufReader::with_capacity(1 << 20, layer))?;

    let now = rfc3339(std::time::SystemTime::now());
    let host = Platform::host();
    let mut config = json!({
        "architecture": host.architecture,
        "os": host.os,
        "created": now,
        "config": container_config,
        "rootfs": { "type": "layers", "diff_ids": [diff_id.as_str()] },
        "history": [{ "created": now, "created_by": "berth import", "comment": "Imported from tarball" }],
    });
    if let Some(v) = &host.variant {
        config["variant"] = v.clone().into();
    }
    let config = serde_json::to_vec(&config).map_err(json_err("image config"))?;
    let config_digest = Digest::sha256_of(&config);
    store.ingest_blob(&config_digest, &mut &config[..])?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config_digest, config.len() as u64),
        "layers": [descriptor(Compression::None.oci_media_type(), &diff_id, size)],
    });
    let manifest = serde_json::to_vec(&manifest).map_err(json_err("manifest"))?;
    let digest = Digest::sha256_of(&manifest);
    store.ingest_blob(&digest, &mut &manifest[..])?;
    let desc: Descriptor =
        serde_json::from_value(descriptor(OCI_MANIFEST, &digest, manifest.len() as u64))
            .map_err(json_err("manifest descriptor"))?;
    Ok(match name {
        Some(name) => store.register(name, desc)?,
        None => store.register_untagged(desc)?,
    })
}

/// Decompress (gzip/zstd/plain, detected) `input` into `path`; returns the
/// sha256 and length of the plain tar.
fn decompress_to(input: &mut dyn Read, path: &std::path::Path) -> Result<(Digest, u64), Error> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input.fill_buf().map_err(io_err("read the tarball"))?;
    let compression = Compression::detect(head);
    let decoded =
        unpack::decompress(input, compression).map_err(io_err("decompress the tarball"))?;
    let mut hashing = HashingReader::new(decoded);
    let file = File::create(path).map_err(io_err(format!("create {}", path.display())))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    io::copy(&mut hashing, &mut out).map_err(io_err("copy the tarball"))?;
    out.flush().map_err(io_err("write the imported layer"))?;
    Ok(hashing.finish())
}

/// Apply one `--change` (a Dockerfile instruction) to a container config
/// (`Cmd`, `Entrypoint`, `Env`, `ExposedPorts`, `Labels`, `User`,
/// `Volumes`, `WorkingDir`, `StopSignal`).
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<(), Error> {
    let bad = || Error::Change(change.to_owned());
    let (word, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(bad)?;
    let rest = rest.trim();
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config.insert("Cmd".into(), command(rest)),
        "ENTRYPOINT" => config.insert("Entrypoint".into(), command(rest)),
        "USER" => config.insert("User".into(), rest.into()),
        "WORKDIR" => config.insert("WorkingDir".into(), rest.into()),
        "STOPSIGNAL" => config.insert("StopSignal".into(), rest.into()),
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            for (k, v) in pairs(rest).ok_or_else(bad)? {
                if let Value::Array(list) = env {
                    list.retain(|e| {
                        e.as_str()
                            .and_then(|e| e.split_once('='))
                            .is_none_or(|(ek, _)| ek != k)
                    });
                    list.push(format!("{k}={v}").into());
                }
            }
            None
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in pairs(rest).ok_or_else(bad)? {
                labels[k] = v.into();
            }
            None
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in words(rest) {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                ports[p] = json!({});
            }
            None
        }
        "VOLUME" => {
            let vols = config.entry("Volumes").or_insert_with(|| json!({}));
            let list = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(list) => list,
                Err(_) => words(rest),
            };
            for v in list {
                vols[v] = json!({});
            }
            None
        }
        _ => return Err(bad()),
    };
    Ok(())
}

/// JSON (exec) form, else shell form as Docker builds it.
fn command(rest: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(argv) => json!(argv),
        Err(_) => json!(["/bin/sh", "-c", rest]),
    }
}

/// Whitespace-separated words; double quotes group and are removed.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// `K=V K2="V 2"`, or the legacy single `K V…` form.
fn pairs(rest: &str) -> Option<Vec<(String, String)>> {
    let list = words(rest);
    if list.first()?.contains('=') {
        list.into_iter()
            .map(|w| w.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    } else {
        let (k, v) = rest.split_once(char::is_whitespace)?;
        Some(vec![(k.to_owned(), v.trim().to_owned())])
    }
}

/// `2006-01-02T15:04:05Z` for `t` (UTC).
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_become_config() {
        let mut c = Map::new();
        for ch in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "EXPOSE 80 53/udp",
            "LABEL org.example=yes",
            "USER nobody",
            "WORKDIR /srv",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        let v = Value::Object(c);
        assert_eq!(v["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(v["Entrypoint"], json!(["/bin/sh", "-c", "/init --flag"]));
        assert_eq!(v["Env"], json!(["B=two words", "A=3"]));
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(v["Labels"], json!({"org.example": "yes"}));
        assert_eq!(v["User"], "nobody");
        assert_eq!(v["WorkingDir"], "/srv");
        assert_eq!(v["Volumes"], json!({"/data": {}}));
        assert_eq!(v["StopSignal"], "SIGINT");
        let err = apply_change(&mut Map::new(), "RUN rm -rf /").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid change \"RUN rm -rf /\""));
    }

    #[test]
    fn timestamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
