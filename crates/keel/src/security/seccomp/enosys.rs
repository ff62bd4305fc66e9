//! An ENOSYS prologue for deny-by-default filters.
//!
//! With `defaultAction: SCMP_ACT_ERRNO` (Docker's profile), a syscall newer
//! than the profile gets EPERM, and libc, which falls back to an older call
//! only on ENOSYS (clone3 → clone, faccessat2 → faccessat, ...), breaks. runc
//! prepends a check that answers ENOSYS for syscalls numbered above every
//! syscall the profile names, per architecture; so does keel.
//!
//! The prologue only jumps forward into libseccomp's program, which starts at
//! its own first instruction and uses relative jumps only, so prepending is
//! safe:
//!
//! ```text
//!   ld arch
//!   per arch A:  jeq A ? next : skip_A
//!                ld nr
//!                (x86_64 with x32 listed: jset X32_BIT ? x32 test : x86_64 test)
//!                jgt max(A) ? enosys : program
//!   ja program
//!   enosys: ret ERRNO(ENOSYS)
//!   program: libseccomp's filter
//! ```

use libseccomp::{ScmpArch, ScmpSyscall};

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The audit token the kernel reports in `seccomp_data.arch`.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    use ScmpArch as A;
    Some(match a {
        A::X86 => 0x4000_0003,
        A::X8664 | A::X32 => AUDIT_ARCH_X86_64,
        A::Arm => 0x4000_0028,
        A::Aarch64 => 0xc000_00b7,
        A::Mips => 0x0000_0008,
        A::Mips64 => 0x8000_0008,
        A::Mips64N32 => 0xa000_0008,
        A::Mipsel => 0x4000_0008,
        A::Mipsel64 => 0xc000_0008,
        A::Mipsel64N32 => 0xe000_0008,
        A::Ppc => 0x0000_0014,
        A::Ppc64 => 0x8000_0015,
        A::Ppc64Le => 0xc000_0015,
        A::S390 => 0x0000_0016,
        A::S390X => 0x8000_0016,
        A::Parisc => 0x0000_000f,
        A::Parisc64 => 0x8000_000f,
        A::Riscv64 => 0xc000_00f3,
        A::Loongarch64 => 0xc000_0102,
        A::M68k => 0x0000_0004,
        _ => return None,
    })
}

/// The highest number among `names` on `arch` (x32 numbers carry the x32 bit).
fn max_syscall<'a>(names: impl Iterator<Item = &'a str>, arch: ScmpArch) -> Option<u32> {
    names
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(|s| s.as_raw_syscall())
        .filter(|nr| *nr >= 0)
        .map(|nr| nr as u32)
        .max()
}

/// One BPF instruction, as the kernel lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        Insn { code, jt, jf, k }
    }

    fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&self.code.to_ne_bytes());
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..].copy_from_slice(&self.k.to_ne_bytes());
        b
    }
}

/// `(audit arch, max native nr, max x32 nr)` per distinct audit arch.
type ArchMax = (u32, Option<u32>, Option<u32>);

fn arch_maxima(archs: &[ScmpArch], names: &[&str]) -> Vec<ArchMax> {
    let mut out: Vec<ArchMax> = Vec::new();
    for arch in archs {
        let Some(token) = audit_arch(*arch) else {
            continue;
        };
        let max = max_syscall(names.iter().copied(), *arch);
        let entry = match out.iter_mut().find(|e| e.0 == token) {
            Some(e) => e,
            None => {
                out.push((token, None, None));
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if *arch == ScmpArch::X32 {
            entry.2 = max;
        } else {
            entry.1 = max;
        }
    }
    out
}

/// The instructions of one arch block; `to_program`/`to_enosys` are the
/// distances from the block's end to the two targets.
fn arch_block((token, native, x32): ArchMax, to_program: usize, to_enosys: usize) -> Vec<Insn> {
    // Tests after `ld nr`, built back to front so each knows its distance.
    let mut tail: Vec<Insn> = Vec::new();
    let jgt = |max: Option<u32>| -> Insn {
        // No names on this arch: leave everything to the program.
        let max = max.unwrap_or(u32::MAX);
        Insn::new(JGT_K, to_enosys as u8, to_program as u8, max)
    };
    if token == AUDIT_ARCH_X86_64 {
        // x32 calls share the audit arch and carry the x32 bit.
        let x32_test = match x32 {
            Some(_) => jgt(x32),
            None => Insn::new(JA, 0, 0, to_program as u32),
        };
        let native_test = jgt(native);
        tail.push(Insn::new(JSET_K, 1, 0, X32_SYSCALL_BIT));
        tail.push(native_test);
        tail.push(x32_test);
    } else {
        tail.push(jgt(native));
    }
    let mut block = vec![Insn::new(JEQ_K, 0, (tail.len() + 1) as u8, token)];
    block.push(Insn::new(LD_W_ABS, 0, 0, OFFSET_NR));
    block.extend(tail);
    block
}

/// The prologue for a filter over `archs` naming `names`, or `None` when a
/// jump would not fit (then the filter is loaded without it).
pub(super) fn prologue(archs: &[ScmpArch], names: &[&str]) -> Option<Vec<Insn>> {
    let maxima = arch_maxima(archs, names);
    if maxima.is_empty() {
        return None;
    }
    // Layout: ld arch, blocks..., ja program, ret enosys, [program].
    let sizes: Vec<usize> = maxima
        .iter()
        .map(|m| if m.0 == AUDIT_ARCH_X86_64 { 5 } else { 3 })
        .collect();
    let total_blocks: usize = sizes.iter().sum();
    if total_blocks + 2 > 250 {
        return None;
    }
    let mut insns = vec![Insn::new(LD_W_ABS, 0, 0, OFFSET_ARCH)];
    let mut used = 0;
    for (m, size) in maxima.iter().zip(&sizes) {
        used += size;
        let after = total_blocks - used; // blocks left after this one
        let to_enosys = after + 1; // over `ja program`
        let to_program = after + 2; // over `ja` and `ret`
        let block = arch_block(*m, to_program, to_enosys);
        // Within the block, jumps count from each instruction to the end.
        insns.extend(fix_block(block));
    }
    insns.push(Insn::new(JA, 0, 0, 1));
    insns.push(Insn::new(RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32));
    Some(insns)
}

/// `arch_block` writes jump targets as distances from the block's end;
/// turn them into BPF's distances from the next instruction.
fn fix_block(mut block: Vec<Insn>) -> Vec<Insn> {
    let n = block.len();
    for (i, insn) in block.iter_mut().enumerate() {
        let to_end = (n - 1 - i) as u8;
        match insn.code {
            JGT_K => {
                insn.jt += to_end;
                insn.jf += to_end;
            }
            JA => insn.k += u32::from(to_end),
            _ => {} // JEQ/JSET offsets are local to the block already
        }
    }
    block
}

/// Prepend the prologue to an exported libseccomp program.
pub(super) fn prepend(prologue: &[Insn], program: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prologue.len() * 8 + program.len());
    for insn in prologue {
        out.extend_from_slice(&insn.to_bytes());
    }
    out.extend_from_slice(program);
    out
}

#[cfg(test)]
#[path = "enosys_tests.rs"]
mod tests;
