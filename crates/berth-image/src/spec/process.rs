//! What the container runs: the command line from Entrypoint/Cmd and the
//! user's overrides, the environment, and the working directory, with the
//! rules `docker run` applies.

use super::defaults::DEFAULT_PATH;
use super::Error;

/// `process.args` from the image's Entrypoint/Cmd and the overrides:
/// * `entrypoint: Some(list)` replaces the image's Entrypoint and drops its
///   Cmd (`--entrypoint`); `Some(vec![])` clears the Entrypoint and keeps the
///   image's Cmd (`--entrypoint ""`);
/// * a non-empty `cmd` (the arguments after the image name) replaces Cmd.
pub fn args(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint: Option<&[String]>,
    cmd: &[String],
) -> Result<Vec<String>, Error> {
    let (entrypoint, default_cmd) = match entrypoint {
        None => (image_entrypoint, image_cmd),
        Some([]) => (&[][..], image_cmd),
        Some(list) => (list, &[][..]),
    };
    let cmd = if cmd.is_empty() { default_cmd } else { cmd };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

/// `process.env`: `PATH`, `HOSTNAME` (and `TERM=xterm` with a terminal),
/// then the image's Env, then the user's `-e` entries, each replacing an
/// earlier variable of the same name (an entry without `=` removes it);
/// finally `HOME` from the user's passwd entry when nothing set it.
pub fn env(
    hostname: &str,
    tty: bool,
    image_env: &[String],
    overrides: &[String],
    home: &str,
) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    for entry in image_env.iter().chain(overrides) {
        replace_or_append(&mut env, entry);
    }
    if !env.iter().any(|e| key(e) == "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

fn replace_or_append(env: &mut Vec<String>, entry: &str) {
    let name = key(entry);
    let existing = env.iter().position(|e| key(e) == name);
    match (existing, entry.contains('=')) {
        (Some(i), true) => env[i] = entry.to_owned(),
        (Some(i), false) => {
            env.remove(i);
        }
        (None, true) => env.push(entry.to_owned()),
        (None, false) => {}
    }
}

/// `process.cwd`: `-w`, else the image's WorkingDir, else `/`; it must be
/// absolute.
pub fn cwd(image_workdir: Option<&str>, workdir: Option<&str>) -> Result<String, Error> {
    let dir = workdir
        .or(image_workdir)
        .filter(|d| !d.is_empty())
        .unwrap_or("/");
    if !dir.starts_with('/') {
        return Err(Error::RelativeWorkdir(dir.to_owned()));
    }
    Ok(dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        // (image entrypoint, image cmd, --entrypoint, args, expected)
        type Case<'a> = (
            &'a [&'a str],
            &'a [&'a str],
            Option<&'a [&'a str]>,
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (&[], &["sh"], None, &[], &["sh"]),
            (&[], &["sh"], None, &["echo", "hi"], &["echo", "hi"]),
            (&["/init"], &["--serve"], None, &[], &["/init", "--serve"]),
            (
                &["/init"],
                &["--serve"],
                None,
                &["--debug"],
                &["/init", "--debug"],
            ),
            (
                &["/init"],
                &["--serve"],
                Some(&["/bin/sh"]),
                &[],
                &["/bin/sh"],
            ),
            (
                &["/init"],
                &["--serve"],
                Some(&["/bin/sh"]),
                &["-c", "id"],
                &["/bin/sh", "-c", "id"],
            ),
            (&["/init"], &["--serve"], Some(&[]), &[], &["--serve"]),
            (&["/init"], &["--serve"], Some(&[]), &["ls"], &["ls"]),
        ];
        for (ep, cmd, ep_override, run_args, expected) in cases {
            let ep_override = ep_override.map(v);
            let got = args(&v(ep), &v(cmd), ep_override.as_deref(), &v(run_args)).expect("args");
            assert_eq!(
                got,
                v(expected),
                "entrypoint {ep:?} cmd {cmd:?} override {ep_override:?} args {run_args:?}"
            );
        }
        assert!(matches!(args(&[], &[], None, &[]), Err(Error::NoCommand)));
        assert!(matches!(
            args(&v(&["/x"]), &[], Some(&[]), &[]),
            Err(Error::NoCommand)
        ));
    }

    #[test]
    fn env_layers_replace_by_name() {
        let got = env(
            "abc",
            false,
            &v(&["PATH=/bin", "A=1", "B=2"]),
            &v(&["B=3", "C=4", "A"]),
            "/root",
        );
        assert_eq!(
            got,
            v(&["PATH=/bin", "HOSTNAME=abc", "B=3", "C=4", "HOME=/root"])
        );
        let got = env("abc", true, &[], &v(&["HOME=/h"]), "/root");
        assert_eq!(
            got,
            v(&[
                &format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=abc",
                "TERM=xterm",
                "HOME=/h"
            ])
        );
    }

    #[test]
    fn working_directory() {
        assert_eq!(cwd(None, None).expect("default"), "/");
        assert_eq!(cwd(Some("/app"), None).expect("image"), "/app");
        assert_eq!(cwd(Some("/app"), Some("/tmp")).expect("override"), "/tmp");
        assert_eq!(cwd(Some(""), None).expect("empty"), "/");
        assert!(matches!(
            cwd(None, Some("rel")),
            Err(Error::RelativeWorkdir(_))
        ));
    }
}
