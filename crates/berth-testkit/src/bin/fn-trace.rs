//! `fn-trace`: which functions of a program does a command run, in the order
//! they first run, across every process the command forks (until a process
//! execs something else).
//!
//! ```text
//! fn-trace SYMBOLS OUT -- PROGRAM [ARGS...]
//! ```
//! SYMBOLS holds `nm --defined-only -S PROGRAM` output (ADDR SIZE TYPE NAME);
//! the names of the functions hit are appended to OUT, one per line, first hit
//! first. The exit status is PROGRAM's.
//!
//! How: PROGRAM starts under ptrace; right after its exec every function entry
//! gets a one-shot breakpoint (int3). A process that traps is recorded, the
//! original byte is put back in that process and it resumes at the same
//! address. Forked processes inherit the breakpoints not yet hit, and are
//! traced the same way. When PROGRAM exits, the processes it leaves behind
//! (a created container's init waiting for `start`) get every original byte
//! back and are let go. `scripts/keel-link-order.sh` uses this to lay keel's
//! hot code out together (docs/performance.md).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::process::exit;

fn main() {
    if let Err(e) = run() {
        eprintln!("fn-trace: {e}");
        exit(2);
    }
}

fn usage() -> String {
    "usage: fn-trace SYMBOLS OUT -- PROGRAM [ARGS...]".to_string()
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 || args[2] != "--" {
        return Err(usage());
    }
    let symbols = read_symbols(&args[0])?;
    let mut out = BufWriter::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args[1])
            .map_err(|e| format!("{}: {e}", args[1]))?,
    );
    let argv: Vec<CString> = args[3..]
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("argument {a:?} has a NUL byte")))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    // SAFETY: the child only calls async-signal-safe functions (ptrace,
    // execvp, _exit) before it execs.
    let root = unsafe { libc::fork() };
    if root < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if root == 0 {
        // SAFETY: plain syscalls; argv_ptrs is NUL-terminated and its strings
        // outlive the call (execvp does not return on success).
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let status = wait(root)?;
    if !libc::WIFSTOPPED(status) {
        return Err(format!("{} did not start", args[3]));
    }
    let base = load_base(root)?;
    let mut original: HashMap<u64, u8> = HashMap::new();
    {
        let mem = open_mem(root)?;
        for &addr in symbols.keys() {
            let mut byte = [0u8; 1];
            if mem.read_exact_at(&mut byte, base + addr).is_err() {
                continue;
            }
            original.insert(addr, byte[0]);
            mem.write_all_at(&[0xcc], base + addr)
                .map_err(|e| format!("placing a breakpoint: {e}"))?;
        }
    }
    let options = libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACEEXEC;
    // SAFETY: plain ptrace requests on our stopped tracee.
    unsafe {
        libc::ptrace(libc::PTRACE_SETOPTIONS, root, 0, options as libc::c_long);
        libc::ptrace(libc::PTRACE_CONT, root, 0, 0);
    }

    let mut live: HashSet<i32> = HashSet::from([root]);
    let mut fresh: HashSet<i32> = HashSet::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut root_status = 0;
    let mut draining = false;
    while !live.is_empty() {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid < 0 {
            break;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            live.remove(&pid);
            if pid == root {
                root_status = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                // Let the rest go: stop each, put its code back, detach.
                draining = true;
                for &p in live.iter().filter(|p| !fresh.contains(p)) {
                    // SAFETY: plain kill(2) of a process we trace.
                    unsafe { libc::kill(p, libc::SIGSTOP) };
                }
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        if live.insert(pid) {
            fresh.insert(pid);
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        let mut inject = 0;
        if event == libc::PTRACE_EVENT_EXEC {
            // Something else now runs in this process: leave it alone.
            // SAFETY: plain ptrace request on a stopped tracee.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
            live.remove(&pid);
            continue;
        } else if event != 0 {
            // fork/clone/vfork: the new process reports its own first stop.
            let mut child: libc::c_ulong = 0;
            // SAFETY: GETEVENTMSG writes one c_ulong into a local.
            unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut child) };
            if live.insert(child as i32) {
                fresh.insert(child as i32);
            }
        } else if sig == libc::SIGSTOP && draining {
            restore_all(pid, base, &original);
            // SAFETY: plain ptrace request on a stopped tracee; signal 0
            // drops the SIGSTOP we sent.
            unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
            live.remove(&pid);
            fresh.remove(&pid);
            continue;
        } else if sig == libc::SIGSTOP && fresh.remove(&pid) {
            // A new process's first stop.
        } else if sig == libc::SIGTRAP {
            // SAFETY: user_regs_struct is plain data; GETREGS fills it.
            let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
            // SAFETY: GETREGS/SETREGS read and write a local struct.
            unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs) };
            let addr = regs.rip.wrapping_sub(1).wrapping_sub(base);
            if let Some(&byte) = original.get(&addr) {
                if let Ok(mem) = open_mem(pid) {
                    let _ = mem.write_all_at(&[byte], base + addr);
                }
                regs.rip -= 1;
                // SAFETY: as above.
                unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs) };
                if seen.insert(addr) {
                    if let Some(name) = symbols.get(&addr) {
                        writeln!(out, "{name}").map_err(|e| e.to_string())?;
                    }
                }
            } else {
                inject = sig;
            }
        } else {
            inject = sig;
        }
        // SAFETY: plain ptrace request on a stopped tracee.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, inject as libc::c_long) };
    }
    out.flush().map_err(|e| e.to_string())?;
    exit(root_status);
}

/// Put every original byte back in `pid`'s code.
fn restore_all(pid: i32, base: u64, original: &HashMap<u64, u8>) {
    let (Some(lo), Some(hi)) = (original.keys().min(), original.keys().max()) else {
        return;
    };
    let Ok(mem) = open_mem(pid) else { return };
    let mut code = vec![0u8; (hi - lo + 1) as usize];
    if mem.read_exact_at(&mut code, base + lo).is_err() {
        return;
    }
    for (&addr, &byte) in original {
        code[(addr - lo) as usize] = byte;
    }
    let _ = mem.write_all_at(&code, base + lo);
}

fn wait(pid: i32) -> Result<i32, String> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a local.
    if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } < 0 {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    Ok(status)
}

fn open_mem(pid: i32) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .map_err(|e| format!("/proc/{pid}/mem: {e}"))
}

/// Function symbols by address (relative to the load address); the first
/// name listed at an address wins.
fn read_symbols(path: &str) -> Result<HashMap<u64, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut symbols = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [addr, size, kind, name] = f[..] else {
            continue;
        };
        if !matches!(kind, "t" | "T" | "w" | "W") {
            continue;
        }
        let (Ok(addr), Ok(size)) = (u64::from_str_radix(addr, 16), u64::from_str_radix(size, 16))
        else {
            continue;
        };
        if size > 0 {
            symbols.entry(addr).or_insert_with(|| name.to_string());
        }
    }
    if symbols.is_empty() {
        return Err(format!(
            "{path}: no function symbols (is the binary stripped?)"
        ));
    }
    Ok(symbols)
}

/// Where the program's first segment (file offset 0) is mapped.
fn load_base(pid: i32) -> Result<u64, String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| e.to_string())?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && f[2].trim_start_matches('0').is_empty() && f[5] == exe.to_string_lossy()
        {
            let start = f[0].split('-').next().unwrap_or("");
            return u64::from_str_radix(start, 16).map_err(|e| e.to_string());
        }
    }
    Err(format!("{}: not mapped", exe.display()))
}
