use keel::container::{self, TemplateOptions};

use super::args::{Command, Matches, Opt};

pub const CMD: Command = Command {
    name: "spec",
    about: "write a template config.json",
    opts: &[
        Opt::value(
            "bundle",
            Some('b'),
            "bundle directory to write config.json into",
        ),
        Opt::switch(
            "rootless",
            None,
            "a config for an unprivileged user (user namespace, no network ns)",
        ),
    ],
    positionals: &[],
};

pub fn run(m: &Matches) -> anyhow::Result<i32> {
    container::write_template(&TemplateOptions {
        bundle: m.path("bundle"),
        rootless: m.on("rootless"),
    })?;
    Ok(0)
}
