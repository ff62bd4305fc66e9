//! Tests of the whole-process checks.
#![allow(clippy::unwrap_used)]

use oci_spec::runtime::Spec;
use serde_json::json;

fn spec_with(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
    let mut v = json!({
        "ociVersion": "1.2.0",
        "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0}},
        "linux": {}
    });
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

fn validate(spec: &Spec) -> Result<(), String> {
    super::validate(spec.process().as_ref().unwrap(), spec).map_err(|e| e.to_string())
}

#[test]
fn a_plain_process_is_valid() {
    validate(&spec_with(|_| {})).unwrap();
}

#[test]
fn each_bad_field_is_named() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "process.rlimits RLIMIT_CORE",
            Box::new(|v| {
                v["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}])
            }),
        ),
        (
            "process.oomScoreAdj",
            Box::new(|v| v["process"]["oomScoreAdj"] = json!(-1001)),
        ),
        (
            "linux.personality.flags",
            Box::new(|v| v["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["X"]})),
        ),
        (
            "process.ioPriority.priority",
            Box::new(|v| {
                v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8})
            }),
        ),
        (
            "process.scheduler.nice",
            Box::new(|v| v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 20})),
        ),
        (
            "process.user.umask",
            Box::new(|v| v["process"]["user"]["umask"] = json!(0o1777)),
        ),
    ];
    for (field, edit) in cases {
        let err = validate(&spec_with(edit)).unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
}
