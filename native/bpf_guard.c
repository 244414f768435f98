/*
 * The verdict cache's setsockopt guard (docs/attribution.md "Verdict cache", docs/security.md): a
 * cgroup/setsockopt program that refuses (EPERM) setsockopt(SOL_SOCKET, SO_MARK) with Warden's
 * "decided" bit (VCACHE_MARK) in the value. Since Linux 5.17 CAP_NET_RAW is enough to set a socket's
 * mark (containers with the host's network have it by default): without the guard such a process
 * could put the bit on a socket whose connection the engine dropped, and the SYN sent again would be
 * accepted by the ruleset as a decided connection. The connect programs' own bpf_setsockopt does not
 * pass through this hook (the kernel calls the socket's option code directly). Attached with a bpf
 * link to the same cgroup as the connect programs, before them, and detached with them.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_insn.h"
#include "bpf_attr.h"

#define CTX(f) ((int16_t)offsetof(struct bpf_sockopt, f))

int bpf_guard_attach(int cgroup_fd, int *prog_fd, int *link_fd) {
  /* r1 = ctx. Other options, a value shorter than 4 bytes (the kernel refuses it) and values
   * without the bit: 1 (go on). The bit: 0 (EPERM). */
  const struct bpf_insn insns[] = {
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, CTX(level), 0),
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 11, 1 /* SOL_SOCKET */),
      INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, CTX(optname), 0),
      INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 9, 36 /* SO_MARK */),
      INSN(BPF_LDX | BPF_MEM | BPF_DW, 2, 1, CTX(optval), 0),
      INSN(BPF_LDX | BPF_MEM | BPF_DW, 3, 1, CTX(optval_end), 0),
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
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_SOCKOPT;
  attr.expected_attach_type = BPF_CGROUP_SETSOCKOPT;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = sizeof insns / sizeof insns[0];
  attr.license = (uint64_t)(uintptr_t)license;
  int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0) return -errno;
  memset(&attr, 0, sizeof attr);
  attr.link_create.prog_fd = (uint32_t)fd;
  attr.link_create.target_fd = (uint32_t)cgroup_fd;
  attr.link_create.attach_type = BPF_CGROUP_SETSOCKOPT;
  int link = (int)syscall(SYS_bpf, BPF_LINK_CREATE, &attr, sizeof attr);
  if (link < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  *prog_fd = fd;
  *link_fd = link;
  return 0;
}
