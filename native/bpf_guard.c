/*
 * The verdict cache's mark guards (docs/attribution.md "Verdict cache", docs/security.md): no process
 * of the cgroup gets a connection accepted by putting Warden's "decided" bit (VCACHE_MARK) in its
 * socket's mark. Since Linux 5.17 CAP_NET_RAW is enough to set a socket's mark (containers with the
 * host's network have it by default): such a process could put the bit on a socket whose connection
 * the engine dropped, and the SYN sent again would be accepted by the ruleset as a decided one.
 *
 * - A cgroup/setsockopt program refuses (EPERM) setsockopt(SOL_SOCKET, SO_MARK) whose value has the
 *   bit. The kernel runs it for native calls only (net/socket.c do_sock_setsockopt: `if (!compat)`):
 *   a 64-bit process can make the 32-bit setsockopt or socketcall system call (`int $0x80`), and an
 *   io_uring ring set up by a 32-bit call sets options as compat too; none passes through it.
 * - So a sock_ops program guards the packets, whatever set the mark: at each connect, once the
 *   connect programs have decided and before the SYN is built (BPF_SOCK_OPS_TCP_CONNECT_CB, under the
 *   socket lock that setsockopt takes too), a socket without the bit (the cache did not decide it)
 *   asks for retransmission timeouts; at each one (BPF_SOCK_OPS_RTO_CB, in the timer under the
 *   socket's lock, before the segment is sent again) the bit is cleared from its mark. A SYN sent
 *   again with a bit set after its connect is then queued and decided by the engine like the first.
 *   A socket the cache decided stops asking (its connect may have been a miss before).
 * The connect programs' own bpf_setsockopt passes through neither hook (the kernel calls the socket's
 * option code directly). Attached with bpf links to the same cgroup as the connect programs, before
 * them, and detached with them (the links closed); the programs live as long as their links.
 * The connect-time slots' sock_ops program (bpf_tuple.c) includes the sock_ops guard's instructions
 * (bpf_guard_emit) and, while it is open, takes the guard's place on its link (an atomic swap): one
 * program per TCP callback instead of two (each is an indirect call per callback, five callbacks a
 * connection); at its close the guard alone goes back on the link.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf_insn.h"
#include "bpf_attr.h"

#define SOL_SOCKET_ 1
#define SO_MARK_ 36
static const char license[] = "GPL";

/* Loads `insns` and links them to the cgroup; 0 or -errno. The program's fd is closed (the link keeps
 * the program), or kept in `*prog_fd` when that is not NULL. */
static int load_and_link(enum bpf_prog_type type, enum bpf_attach_type attach, const struct bpf_insn *insns,
                         size_t count, int cgroup_fd, int *link_fd, int *prog_fd) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = type;
  attr.expected_attach_type = attach;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)count;
  attr.license = (uint64_t)(uintptr_t)license;
  int prog = (int)bpf_prog_load(&attr);
  if (prog < 0) return -errno;
  memset(&attr, 0, sizeof attr);
  attr.link_create.prog_fd = (uint32_t)prog;
  attr.link_create.target_fd = (uint32_t)cgroup_fd;
  attr.link_create.attach_type = attach;
  int link = (int)sys_bpf(BPF_LINK_CREATE, &attr);
  int err = errno;
  if (link < 0 || prog_fd == NULL) close(prog); /* the link keeps the program */
  if (link < 0) return -err;
  *link_fd = link;
  if (prog_fd != NULL) *prog_fd = prog;
  return 0;
}

#define SOCKOPT(f) ((int16_t)offsetof(struct bpf_sockopt, f))

static int setsockopt_guard(int cgroup_fd, int *link_fd) {
  /* r1 = ctx. Other options, a value shorter than 4 bytes (the kernel refuses it) and values
   * without the bit: 1 (go on). The bit: 0 (EPERM). */
  const struct bpf_insn insns[] = {
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, SOCKOPT(level), 0),
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 11, SOL_SOCKET_),
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, SOCKOPT(optname), 0),
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 9, SO_MARK_),
      INSN(BPF_LDX | BPF_MEM | BPF_DW, 2, 1, SOCKOPT(optval), 0),
      INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 1, SOCKOPT(optval_end), 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0),
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 4),
      INSN(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 4, 0),
      INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 2, 0, 0),
      INSN(BPF_ALU64 | BPF_AND | BPF_K, 4, 0, 0, (int32_t)VCACHE_MARK),
      INSN(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 1, 0),
      INSN(BPF_JMP | BPF_JA, 0, 0, 2, 0),
      /* allow: */
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      /* refuse: */
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  return load_and_link(BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_SETSOCKOPT, insns, sizeof insns / sizeof insns[0],
                       cgroup_fd, link_fd, NULL);
}

#define OPS(f) ((int16_t)offsetof(struct bpf_sock_ops, f))

/*
 * The sock_ops guard's instructions (r6 = ctx, set by the caller): a retransmission timeout's ends at
 * the common exit (to_exit); a connect's, and any other callback, go on to the instructions emitted
 * next (bpf_tuple.c puts the connect-time slots' program there: one program, one call per callback).
 */
void bpf_guard_emit(program *p) {
  /* r7 = the socket's mark (ctx->sk: a full socket at both callbacks). */
  EMIT(p, LDX_W(R2, R6, OPS(op)));
  size_t connect = jump(p, JEQ_IMM(R2, BPF_SOCK_OPS_TCP_CONNECT_CB));
  size_t other = jump(p, JNE_IMM(R2, BPF_SOCK_OPS_RTO_CB));
  /* A retransmission timeout: the bit is cleared before the segment is sent again. */
  EMIT(p, LDX_DW(R1, R6, OPS(sk)));
  to_exit(p, JEQ_IMM(R1, 0));
  EMIT(p, LDX_W(R7, R1, (int16_t)offsetof(struct bpf_sock, mark)));
  size_t marked = jump(p, JSET_IMM(R7, (int32_t)VCACHE_MARK));
  to_exit(p, JA());
  land(p, marked);
  EMIT(p, AND64_IMM(R7, (int32_t)~VCACHE_MARK), STX_W(R10, R7, -8), MOV64_REG(R1, R6), MOV64_IMM(R2, SOL_SOCKET_),
       MOV64_IMM(R3, SO_MARK_), MOV64_REG(R4, R10), ADD64_IMM(R4, -8), MOV64_IMM(R5, 4), CALL(BPF_FUNC_setsockopt));
  to_exit(p, JA());
  /* A connect, decided: without the bit, ask for retransmission timeouts; with it (a hit), stop. */
  land(p, connect);
  EMIT(p, LDX_W(R2, R6, OPS(bpf_sock_ops_cb_flags)), OR64_IMM(R2, BPF_SOCK_OPS_RTO_CB_FLAG), LDX_DW(R1, R6, OPS(sk)));
  size_t no_sk = jump(p, JEQ_IMM(R1, 0));
  EMIT(p, LDX_W(R3, R1, (int16_t)offsetof(struct bpf_sock, mark)));
  size_t hit = jump(p, JSET_IMM(R3, (int32_t)VCACHE_MARK));
  size_t set = jump(p, JA());
  land(p, hit);
  EMIT(p, AND64_IMM(R2, ~BPF_SOCK_OPS_RTO_CB_FLAG));
  land(p, no_sk);
  land(p, set);
  EMIT(p, MOV64_REG(R1, R6), CALL(BPF_FUNC_sock_ops_cb_flags_set));
  land(p, other);
}

/* The guard alone; its program's fd is kept in `*prog_fd` (the slots' program swaps it on the link). */
static int retransmit_guard(int cgroup_fd, int *link_fd, int *prog_fd) {
  program *p = calloc(1, sizeof *p);
  if (p == NULL) return -ENOMEM;
  EMIT(p, MOV64_REG(R6, R1));
  bpf_guard_emit(p);
  for (size_t i = 0; i < p->exit_count; i++) land(p, p->exits[i]);
  EMIT(p, MOV64_IMM(R0, 1), EXIT());
  int err = p->n > BPF_PROGRAM_MAX ? -E2BIG
                                   : load_and_link(BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, p->insn, p->n,
                                                   cgroup_fd, link_fd, prog_fd);
  free(p);
  return err;
}

int bpf_guard_attach(int cgroup_fd, int *first, int *second, int *second_prog) {
  int setsockopt_link = -1, retransmit_link = -1;
  int err = setsockopt_guard(cgroup_fd, &setsockopt_link);
  if (err == 0) err = retransmit_guard(cgroup_fd, &retransmit_link, second_prog);
  if (err != 0) {
    if (setsockopt_link >= 0) close(setsockopt_link);
    return err;
  }
  *first = setsockopt_link;
  *second = retransmit_link;
  return 0;
}

