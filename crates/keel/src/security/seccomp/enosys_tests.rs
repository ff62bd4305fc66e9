//! Tests of the ENOSYS prologue, run through a small classic-BPF evaluator.
#![allow(clippy::unwrap_used)]

use super::*;

const ALLOW: u32 = 0x7fff_0000;

/// Evaluate the prologue followed by a one-instruction program `ret ALLOW`.
fn eval(prog: &[Insn], arch: u32, nr: u32) -> u32 {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = if i.k == OFFSET_ARCH { arch } else { nr },
            JEQ_K => pc += usize::from(if acc == i.k { i.jt } else { i.jf }),
            JGT_K => pc += usize::from(if acc > i.k { i.jt } else { i.jf }),
            JSET_K => pc += usize::from(if acc & i.k != 0 { i.jt } else { i.jf }),
            JA => pc += i.k as usize,
            RET_K => return i.k,
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

fn with_program(mut p: Vec<Insn>) -> Vec<Insn> {
    p.push(Insn::new(RET_K, 0, 0, ALLOW));
    p
}

const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;
const X86: u32 = 0x4000_0003;

#[test]
fn x32_numbers_carry_the_x32_bit() {
    let nr = ScmpSyscall::from_name_by_arch("read", ScmpArch::X32)
        .unwrap()
        .as_raw_syscall() as u32;
    assert_eq!(nr & X32_SYSCALL_BIT, X32_SYSCALL_BIT, "{nr:#x}");
}

#[test]
fn newer_syscalls_get_enosys_per_arch() {
    // read: 0 on x86_64, 3 on x86; getpid: 39 on x86_64, 20 on x86.
    let names = ["read", "getpid"];
    let archs = [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32];
    let p = with_program(prologue(&archs, &names).unwrap());
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 0), ALLOW);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 39), ALLOW);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 40), ENOSYS);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 435), ENOSYS);
    assert_eq!(eval(&p, X86, 20), ALLOW);
    assert_eq!(eval(&p, X86, 21), ENOSYS);
    // x32: getpid is 39 | bit.
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39), ALLOW);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 400), ENOSYS);
    // An arch the filter does not list: left to libseccomp's bad-arch action.
    assert_eq!(eval(&p, 0xc000_00b7, 9999), ALLOW);
}

#[test]
fn x86_64_without_x32_leaves_x32_calls_to_the_program() {
    let p = with_program(prologue(&[ScmpArch::X8664], &["read", "getpid"]).unwrap());
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 400), ALLOW);
    assert_eq!(eval(&p, AUDIT_ARCH_X86_64, 400), ENOSYS);
}

#[test]
fn instruction_encoding() {
    let b = Insn::new(JGT_K, 1, 2, 0x0102_0304).to_bytes();
    let code = u16::from_ne_bytes([b[0], b[1]]);
    assert_eq!((code, b[2], b[3]), (JGT_K, 1, 2));
    assert_eq!(u32::from_ne_bytes([b[4], b[5], b[6], b[7]]), 0x0102_0304);
}
