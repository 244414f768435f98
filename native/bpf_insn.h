/*
 * BPF from C without libbpf: the bpf() call, and instructions for the programs the addon builds at
 * run time (bpf_attr.c, bpf_tuple.c, bpf_guard.c): macros in the style of the kernel's
 * tools/include/linux/filter.h, and the registers. Jumps are emitted with offset 0 and set once their
 * label is known.
 */
#ifndef WARDEN_BPF_INSN_H
#define WARDEN_BPF_INSN_H

#include <errno.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/*
 * BPF_PROG_LOAD with the calling thread's signals blocked, and again if it still says EAGAIN: the
 * verifier gives up with EAGAIN when a signal is pending for the thread (it checks as it goes), and
 * an engine gets signals at any time (SIGCHLD from its nft and hash children, SIGHUP, a profiler's
 * SIGPROF). Measured: under `node --cpu-prof` every load of the verdict cache's program was refused
 * so and the engine ran without its cache. Blocked signals wait for the load (milliseconds).
 */
static inline long bpf_prog_load(union bpf_attr *attr) {
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  long fd;
  int attempt = 0;
  do fd = sys_bpf(BPF_PROG_LOAD, attr);
  while (fd < 0 && errno == EAGAIN && ++attempt < 5);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &before, NULL);
  errno = err;
  return fd;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_DW(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_DW, d, 0, o, i)
#define ST_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define LDX_DW(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define SUB64_REG(d, s) INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define ADD64_REG(d, s) INSN(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define OR64_REG(d, s) INSN(BPF_ALU64 | BPF_OR | BPF_X, d, s, 0, 0)
#define MUL64_IMM(d, i) INSN(BPF_ALU64 | BPF_MUL | BPF_K, d, 0, 0, i)
#define RSH64_IMM(d, i) INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, i)
#define AND64_IMM(d, i) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define OR64_IMM(d, i) INSN(BPF_ALU64 | BPF_OR | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define ATOMIC_ADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JNE_IMM(d, i) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, 0, i)
#define JEQ_IMM(d, i) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, 0, i)
#define JEQ_REG(d, s) INSN(BPF_JMP | BPF_JEQ | BPF_X, d, s, 0, 0)
#define JA() INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define XOR64_REG(d, s) INSN(BPF_ALU64 | BPF_XOR | BPF_X, d, s, 0, 0)
#define MUL64_REG(d, s) INSN(BPF_ALU64 | BPF_MUL | BPF_X, d, s, 0, 0)
#define CMPXCHG_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_CMPXCHG)
#define XCHG_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_XCHG)
#define JSET_IMM(d, i) INSN(BPF_JMP | BPF_JSET | BPF_K, d, 0, 0, i)
#define JNE_REG(d, s) INSN(BPF_JMP | BPF_JNE | BPF_X, d, s, 0, 0)
#define LD_IMM64(d, v) INSN(BPF_LD | BPF_DW | BPF_IMM, d, 0, 0, (int32_t)(uint32_t)(v)), INSN(0, 0, 0, 0, (int32_t)(uint32_t)((uint64_t)(v) >> 32))

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

/*
 * A program being built. `n` counts every instruction emitted, also past the end: a program with
 * n > BPF_PROGRAM_MAX is refused before it is loaded (a jump's label past the end is never written).
 */
#define BPF_PROGRAM_MAX 1024
typedef struct {
  struct bpf_insn insn[BPF_PROGRAM_MAX];
  size_t n;
  size_t exits[16]; /* jumps to a common exit, landed together (to_exit) */
  size_t exit_count;
} program;

static inline void emit(program *p, const struct bpf_insn *insns, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (p->n < BPF_PROGRAM_MAX) p->insn[p->n] = insns[i];
    p->n++;
  }
}
#define EMIT(p, ...)                                                                                        \
  do {                                                                                                     \
    const struct bpf_insn list_[] = {__VA_ARGS__};                                                         \
    emit(p, list_, sizeof list_ / sizeof list_[0]);                                                        \
  } while (0)

/* Emits a forward jump; returns its index for land(). */
static inline size_t jump(program *p, struct bpf_insn insn) {
  emit(p, &insn, 1);
  return p->n - 1;
}
/* The jump at `at` lands on the next instruction emitted. */
static inline void land(program *p, size_t at) {
  if (at < p->n && at < BPF_PROGRAM_MAX) p->insn[at].off = (int16_t)(p->n - at - 1);
}
/* A jump to the common exit, landed with the others once the exit is emitted. */
static inline void to_exit(program *p, struct bpf_insn insn) {
  size_t at = jump(p, insn);
  if (p->exit_count < sizeof p->exits / sizeof p->exits[0])
    p->exits[p->exit_count++] = at;
  else
    p->n = BPF_PROGRAM_MAX + 1; /* a jump that could not be landed: the program is refused, never wrong */
}

/* A verifier's log as one line (it goes into error messages and log lines): control characters become spaces. */
static inline void bpf_log_one_line(char *log) {
  for (char *c = log; *c != 0; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
}

#endif
