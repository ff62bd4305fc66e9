//! The cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! generated from a rule list.
//!
//! The kernel calls it with `struct bpf_cgroup_dev_ctx { u32 access_type;
//! u32 major; u32 minor; }` (`access_type` = access << 16 | type) and allows
//! the access when it returns 1. The program loads the four fields into
//! registers, then tests the rules from last to first (so the last matching
//! rule decides) and ends with the default. An allow rule matches when every
//! requested access bit is in the rule; a deny rule when any is. Rules before
//! the last `a` rule are dropped: that rule sets the default instead.
//!
//! ```text
//!   r2 = ctx.access_type & 0xffff   (1 block, 2 char)
//!   r3 = ctx.access_type >> 16      (1 mknod, 2 read, 4 write)
//!   r4 = ctx.major;  r5 = ctx.minor
//!   per rule: if r2 != T goto next; r6 = r3 & M; if r6 ... goto next;
//!             if r4 != MAJ goto next; if r5 != MIN goto next; return ALLOW
//!   return DEFAULT
//! ```

use super::{Kind, Rule, ACC_ALL};

/// `struct bpf_insn`: opcode, dst (low nibble) and src (high nibble)
/// registers, offset, immediate. Its layout is the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// Opcodes used (class | op | source).
pub mod op {
    /// BPF_LDX | BPF_MEM | BPF_W
    pub const LDX_W: u8 = 0x61;
    /// BPF_ALU | BPF_MOV | BPF_X (32-bit register move)
    pub const MOV32_X: u8 = 0xbc;
    /// BPF_ALU64 | BPF_MOV | BPF_K
    pub const MOV64_K: u8 = 0xb7;
    /// BPF_ALU | BPF_AND | BPF_K
    pub const AND32_K: u8 = 0x54;
    /// BPF_ALU | BPF_RSH | BPF_K
    pub const RSH32_K: u8 = 0x74;
    /// BPF_JMP | BPF_JNE | BPF_K
    pub const JNE_K: u8 = 0x55;
    /// BPF_JMP | BPF_JEQ | BPF_K
    pub const JEQ_K: u8 = 0x15;
    /// BPF_JMP | BPF_EXIT
    pub const EXIT: u8 = 0x95;
}

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// One rule's test: the conditional jumps (each skipping to the next rule)
/// followed by `r0 = allow; exit`.
fn rule_block(r: &Rule) -> Vec<Insn> {
    // Each check: instructions, the last of which is the jump out.
    let mut checks: Vec<Vec<Insn>> = Vec::new();
    match r.kind {
        Kind::Block => checks.push(vec![insn(op::JNE_K, 2, 0, 0, DEV_BLOCK)]),
        Kind::Char => checks.push(vec![insn(op::JNE_K, 2, 0, 0, DEV_CHAR)]),
        Kind::All => {}
    }
    let access = i32::from(r.access & ACC_ALL);
    if r.allow && access != i32::from(ACC_ALL) {
        // requested bits outside the rule's → not this rule
        checks.push(vec![
            insn(op::MOV32_X, 6, 3, 0, 0),
            insn(op::AND32_K, 6, 0, 0, !access & i32::from(ACC_ALL)),
            insn(op::JNE_K, 6, 0, 0, 0),
        ]);
    } else if !r.allow && access != i32::from(ACC_ALL) {
        // no requested bit in the rule's → not this rule
        checks.push(vec![
            insn(op::MOV32_X, 6, 3, 0, 0),
            insn(op::AND32_K, 6, 0, 0, access),
            insn(op::JEQ_K, 6, 0, 0, 0),
        ]);
    }
    if let Some(m) = r.major {
        checks.push(vec![insn(op::JNE_K, 4, 0, 0, m as i32)]);
    }
    if let Some(m) = r.minor {
        checks.push(vec![insn(op::JNE_K, 5, 0, 0, m as i32)]);
    }
    let total: usize = checks.iter().map(Vec::len).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(total);
    for c in checks {
        out.extend(c);
        // the jump skips to the end of the block
        let remaining = total - out.len();
        if let Some(j) = out.last_mut() {
            j.off = remaining as i16;
        }
    }
    out.push(insn(op::MOV64_K, 0, 0, 0, i32::from(r.allow)));
    out.push(insn(op::EXIT, 0, 0, 0, 0));
    out
}

/// The program for `rules` (see the module doc). Starts denied.
pub fn generate(rules: &[Rule]) -> Vec<Insn> {
    let (default_allow, rest) = match rules.iter().rposition(|r| r.kind == Kind::All) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (false, rules),
    };
    let mut p = vec![
        insn(op::LDX_W, 2, 1, 0, 0),
        insn(op::MOV32_X, 3, 2, 0, 0),
        insn(op::AND32_K, 2, 0, 0, 0xffff),
        insn(op::RSH32_K, 3, 0, 0, 16),
        insn(op::LDX_W, 4, 1, 4, 0),
        insn(op::LDX_W, 5, 1, 8, 0),
    ];
    for r in rest.iter().rev() {
        // A rule with the default's verdict cannot change the outcome
        // unless an earlier (lower priority) rule of the other verdict
        // overlaps it, so every rule is kept: correctness over size.
        p.extend(rule_block(r));
    }
    p.push(insn(op::MOV64_K, 0, 0, 0, i32::from(default_allow)));
    p.push(insn(op::EXIT, 0, 0, 0, 0));
    p
}

/// The program as the bytes `BPF_PROG_LOAD` takes.
pub fn to_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.push(i.code);
        out.push(i.regs);
        out.extend_from_slice(&i.off.to_le_bytes());
        out.extend_from_slice(&i.imm.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{ACC_MKNOD, ACC_READ, ACC_WRITE, DEFAULT_ALLOWED};
    use super::*;

    /// Decode and run the program on one request, checking that it only
    /// uses the instructions we mean to emit.
    fn run(prog: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                op::LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                op::MOV32_X => r[dst] = r[src] & 0xffff_ffff,
                op::MOV64_K => r[dst] = i.imm as i64 as u64,
                op::AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                op::RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                op::JNE_K | op::JEQ_K => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == op::JEQ_K) {
                        pc += i.off as usize;
                    }
                }
                op::EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn c(allow: bool, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow,
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }

    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;
    const CHAR: u32 = DEV_CHAR as u32;
    const BLOCK: u32 = DEV_BLOCK as u32;

    #[test]
    fn empty_list_denies_everything() {
        let p = generate(&[]);
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, CHAR, R, 1, 3), 0);
    }

    #[test]
    fn runc_defaults() {
        let p = generate(DEFAULT_ALLOWED);
        assert_eq!(run(&p, CHAR, R | W, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&p, CHAR, R, 136, 7), 1, "pts");
        assert_eq!(run(&p, BLOCK, M, 8, 0), 1, "mknod any block");
        assert_eq!(run(&p, BLOCK, R, 8, 0), 0, "read sda");
        assert_eq!(run(&p, CHAR, R, 10, 200), 0, "tun");
        assert_eq!(run(&p, CHAR, W, 4, 1), 0, "tty1");
    }

    #[test]
    fn last_rule_wins_and_wildcard_resets() {
        let all = |allow| Rule {
            allow,
            kind: Kind::All,
            major: None,
            minor: None,
            access: ACC_ALL,
        };
        // allow everything, then deny writes to 1:3
        let p = generate(&[
            c(true, Some(1), Some(5), ACC_ALL),
            all(true),
            c(false, Some(1), Some(3), ACC_WRITE),
        ]);
        assert_eq!(run(&p, CHAR, R, 1, 3), 1);
        assert_eq!(
            run(&p, CHAR, R | W, 1, 3),
            0,
            "deny matches any requested bit"
        );
        assert_eq!(run(&p, BLOCK, R, 8, 0), 1);
        // the wildcard deny drops the earlier allow
        let p = generate(&[c(true, Some(1), Some(5), ACC_ALL), all(false)]);
        assert_eq!(run(&p, CHAR, R, 1, 5), 0);
        // a later allow overrides an earlier deny
        let p = generate(&[
            c(false, Some(1), None, ACC_ALL),
            c(true, Some(1), Some(3), ACC_READ),
        ]);
        assert_eq!(run(&p, CHAR, R, 1, 3), 1);
        assert_eq!(
            run(&p, CHAR, R | W, 1, 3),
            0,
            "allow needs every requested bit"
        );
    }

    #[test]
    fn instruction_encoding() {
        let p = generate(&[c(true, Some(1), Some(3), ACC_READ)]);
        // prologue, then: jne r2,2; mov32 r6,r3; and32 r6,~r; jne r6,0; jne r4,1; jne r5,3; r0=1; exit
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[6],
            Insn {
                code: 0x55,
                regs: 0x02,
                off: 7,
                imm: 2
            }
        );
        assert_eq!(
            p[7],
            Insn {
                code: 0xbc,
                regs: 0x36,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(p[8].imm, 5);
        assert_eq!(p[9].off, 4);
        assert_eq!(
            p[10],
            Insn {
                code: 0x55,
                regs: 0x04,
                off: 3,
                imm: 1
            }
        );
        assert_eq!(
            p[12],
            Insn {
                code: 0xb7,
                regs: 0,
                off: 0,
                imm: 1
            }
        );
        assert_eq!(to_bytes(&p[..1]), vec![0x61, 0x12, 0, 0, 0, 0, 0, 0]);
    }
}
