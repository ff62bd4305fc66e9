use keel::container::{self, Context, UpdateOptions};

use super::args::{Command, Matches, Opt, Pos};

pub const CMD: Command = Command {
    name: "update",
    about: "change a container's resources",
    opts: &[
        Opt::value(
            "resources",
            Some('r'),
            "resources JSON file (`-` for stdin)",
        ),
        Opt::value("memory", None, "memory limit (bytes, or 512m, 1g...)"),
        Opt::value("memory-reservation", None, "memory soft limit"),
        Opt::value("memory-swap", None, "memory + swap limit"),
        Opt::value("kernel-memory", None, "accepted for compatibility"),
        Opt::value("cpu-share", None, "CPU shares").aliases(&["cpu-shares"]),
        Opt::value("cpu-period", None, "CFS period (µs)"),
        Opt::value("cpu-quota", None, "CFS quota (µs)"),
        Opt::value("cpu-rt-period", None, "realtime period (µs)"),
        Opt::value("cpu-rt-runtime", None, "realtime runtime (µs)"),
        Opt::value("cpuset-cpus", None, "CPUs allowed (0-3,5)"),
        Opt::value("cpuset-mems", None, "memory nodes allowed"),
        Opt::value("cpus", None, "CPUs as a fraction (quota/period shorthand)"),
        Opt::value("pids-limit", None, "maximum number of processes"),
        Opt::value("blkio-weight", None, "block IO weight (10-1000)"),
        Opt::value(
            "l3-cache-schema",
            None,
            "L3 cache schema of the resctrl group (L3:0=f;1=f)",
        ),
        Opt::value(
            "mem-bw-schema",
            None,
            "memory bandwidth schema of the resctrl group (MB:0=50)",
        ),
    ],
    positionals: &[Pos::required("container-id")],
};

pub fn run(ctx: &Context, m: &Matches) -> anyhow::Result<i32> {
    let id = super::required(m, 0, "container-id")?;
    let text = |n: &str| m.last(n).map(str::to_string);
    let opts = UpdateOptions {
        resources: m.path("resources"),
        memory: text("memory"),
        memory_reservation: text("memory-reservation"),
        memory_swap: text("memory-swap"),
        kernel_memory: text("kernel-memory"),
        cpu_shares: m.parsed("cpu-share")?,
        cpu_period: m.parsed("cpu-period")?,
        cpu_quota: m.parsed("cpu-quota")?,
        cpu_rt_period: m.parsed("cpu-rt-period")?,
        cpu_rt_runtime: m.parsed("cpu-rt-runtime")?,
        cpuset_cpus: text("cpuset-cpus"),
        cpuset_mems: text("cpuset-mems"),
        cpus: m.parsed("cpus")?,
        pids_limit: m.parsed("pids-limit")?,
        blkio_weight: m.parsed("blkio-weight")?,
        l3_cache_schema: text("l3-cache-schema"),
        mem_bw_schema: text("mem-bw-schema"),
    };
    container::update(ctx, id, &opts)?;
    Ok(0)
}
