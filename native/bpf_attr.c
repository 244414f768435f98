/*
 * Attribution by BPF (docs/attribution.md, "BPF path"): small cgroup programs, assembled here
 * instruction by instruction and loaded with the raw bpf() syscall (no libbpf, no ELF), record who
 * made each socket in an LRU hash keyed by the socket cookie:
 * - cgroup/sock_create (every inet socket), cgroup/connect4, connect6 (TCP and connected UDP),
 *   cgroup/sendmsg4, sendmsg6 (unconnected UDP sends): the current thread's pid and tgid, uid and
 *   gid, comm and the boot-time clock (bpf_ktime_get_boot_ns) go into the map, and, where the
 *   kernel's type information gives the offsets (bpf_btf.c), the first BPF_ATTR_ARGS bytes of the
 *   process's command line (bpf_probe_read_user: it never waits, a page not in memory fails);
 * - cgroup/sock_release deletes the socket's entry (and the map is an LRU besides: it cannot grow
 *   beyond its size even if a release were missed).
 * The programs are attached with bpf links: they are detached when the links are closed, and by the
 * kernel when this process dies, so a crashed engine leaves nothing attached.
 * At decision time sock_diag gives the packet's socket cookie (sock_diag.c) and one
 * BPF_MAP_LOOKUP_ELEM gives the record (bpf_attr_lookup, used by socket_lookup).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"
#include "bpf_attr.h"
#include "nl.h"

/* Instruction macros in the style of the kernel's tools/include/linux/filter.h. */
#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_DW(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_DW, d, 0, o, i)
#define LDX_DW(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define SUB64_REG(d, s) INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* Loads a map's fd as a map pointer: two instructions. */
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

/* The six attach points; the same record program serves the first five. */
static const struct {
  enum bpf_prog_type type;
  enum bpf_attach_type attach;
  int release;
} HOOKS[] = {
    {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE, 1},
};
#define HOOK_COUNT (sizeof HOOKS / sizeof HOOKS[0])

struct bpf_attr_handle {
  int map_fd;
  int cgroup_fd;
  int prog_fds[HOOK_COUNT];
  int link_fds[HOOK_COUNT];
};

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static char verifier_log[16384];

/* Loads one program; returns its fd or -errno (the verifier's log is kept in verifier_log). */
static int load_program(int map_fd, size_t hook, const struct bpf_task_offsets *off) {
  /*
   * Stack: key (cookie) at r10-8; the record at r10-312 (pid_tgid -312, uid_gid -304, boot_ns -296,
   * comm -288, args_len -272, args_read -268, args -264); scratch: mm -320, arg_start -328,
   * arg_end -336. A failed probe read zeroes its destination, so no step needs a branch: without
   * an mm (a kernel thread) every read after it fails and the record says so (args_read < 0).
   */
  const struct bpf_insn head[] = {
      MOV64_REG(R6, R1),
      CALL(BPF_FUNC_get_socket_cookie),
      STX_DW(R10, R0, -8),
      CALL(BPF_FUNC_get_current_pid_tgid),
      STX_DW(R10, R0, -312),
      CALL(BPF_FUNC_get_current_uid_gid),
      STX_DW(R10, R0, -304),
      CALL(BPF_FUNC_ktime_get_boot_ns),
      STX_DW(R10, R0, -296),
      MOV64_REG(R1, R10),
      ADD64_IMM(R1, -288),
      MOV64_IMM(R2, 16),
      CALL(BPF_FUNC_get_current_comm),
      ST_DW(R10, -272, 0),
  };
  const struct bpf_insn args[] = {
      CALL(BPF_FUNC_get_current_task),
      MOV64_REG(R3, R0),
      ADD64_IMM(R3, off->task_mm),
      MOV64_REG(R1, R10),
      ADD64_IMM(R1, -320),
      MOV64_IMM(R2, 8),
      CALL(BPF_FUNC_probe_read_kernel),
      LDX_DW(R3, R10, -320),
      ADD64_IMM(R3, off->mm_arg_start),
      MOV64_REG(R1, R10),
      ADD64_IMM(R1, -328),
      MOV64_IMM(R2, 8),
      CALL(BPF_FUNC_probe_read_kernel),
      LDX_DW(R3, R10, -320),
      ADD64_IMM(R3, off->mm_arg_end),
      MOV64_REG(R1, R10),
      ADD64_IMM(R1, -336),
      MOV64_IMM(R2, 8),
      CALL(BPF_FUNC_probe_read_kernel),
      LDX_DW(R1, R10, -336),
      LDX_DW(R2, R10, -328),
      SUB64_REG(R1, R2),
      STX_W(R10, R1, -272),
      MOV64_REG(R1, R10),
      ADD64_IMM(R1, -264),
      MOV64_IMM(R2, BPF_ATTR_ARGS),
      LDX_DW(R3, R10, -328),
      CALL(BPF_FUNC_probe_read_user),
      STX_W(R10, R0, -268),
  };
  const struct bpf_insn tail[] = {
      LD_MAP_FD(R1, map_fd),
      MOV64_REG(R2, R10),
      ADD64_IMM(R2, -8),
      MOV64_REG(R3, R10),
      ADD64_IMM(R3, -312),
      MOV64_IMM(R4, BPF_ANY),
      CALL(BPF_FUNC_map_update_elem),
      MOV64_IMM(R0, 1), /* 1: allow; these programs never refuse anything */
      EXIT(),
  };
  const struct bpf_insn release[] = {
      CALL(BPF_FUNC_get_socket_cookie),
      STX_DW(R10, R0, -8),
      LD_MAP_FD(R1, map_fd),
      MOV64_REG(R2, R10),
      ADD64_IMM(R2, -8),
      CALL(BPF_FUNC_map_delete_elem),
      MOV64_IMM(R0, 1),
      EXIT(),
  };
  /* The record program: head, then the command line (or, without the offsets, zeroes and
   * args_read = -1, "not read"), then the update. */
  struct bpf_insn record[sizeof head / sizeof head[0] + BPF_ATTR_ARGS / 8 + 1 + sizeof args / sizeof args[0] +
                         sizeof tail / sizeof tail[0]];
  size_t n = 0;
  memcpy(record, head, sizeof head);
  n += sizeof head / sizeof head[0];
  if (off->known) {
    memcpy(record + n, args, sizeof args);
    n += sizeof args / sizeof args[0];
  } else {
    for (int i = 0; i < BPF_ATTR_ARGS; i += 8) record[n++] = ST_DW(R10, -264 + i, 0);
    record[n++] = INSN(BPF_ST | BPF_MEM | BPF_W, R10, 0, -268, -1);
  }
  memcpy(record + n, tail, sizeof tail);
  n += sizeof tail / sizeof tail[0];
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = HOOKS[hook].type;
  attr.expected_attach_type = HOOKS[hook].attach;
  attr.insns = (uint64_t)(uintptr_t)(HOOKS[hook].release ? release : record);
  attr.insn_cnt = HOOKS[hook].release ? sizeof release / sizeof release[0] : (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t)license;
  attr.log_buf = (uint64_t)(uintptr_t)verifier_log;
  attr.log_size = sizeof verifier_log;
  attr.log_level = 1;
  verifier_log[0] = 0;
  int fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
  return fd < 0 ? -errno : fd;
}

static void handle_free(struct bpf_attr_handle *h) {
  for (size_t i = 0; i < HOOK_COUNT; i++) {
    if (h->link_fds[i] >= 0) close(h->link_fds[i]);
    if (h->prog_fds[i] >= 0) close(h->prog_fds[i]);
  }
  if (h->cgroup_fd >= 0) close(h->cgroup_fd);
  if (h->map_fd >= 0) close(h->map_fd);
  free(h);
}

static napi_value fail(napi_env env, struct bpf_attr_handle *h, const char *what, int err) {
  char message[600];
  snprintf(message, sizeof message, "%s%s%.400s", what, verifier_log[0] ? "; verifier: " : "", verifier_log);
  handle_free(h);
  return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", message, err);
}

static void finalize(napi_env env, void *data, void *hint) {
  handle_free(data);
}

/* bpfAttributionOpen(cgroupPath, maxEntries) -> handle: creates the map, loads and attaches. */
napi_value bpf_attribution_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[4096];
  size_t len;
  uint32_t max_entries;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok ||
      len == 0 || len >= sizeof path - 1 || napi_get_value_uint32(env, argv[1], &max_entries) != napi_ok ||
      max_entries == 0) {
    napi_throw_type_error(env, NULL, "bpfAttributionOpen(cgroupPath, maxEntries)");
    return NULL;
  }
  struct bpf_attr_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "out of memory", ENOMEM);
  h->map_fd = h->cgroup_fd = -1;
  for (size_t i = 0; i < HOOK_COUNT; i++) h->prog_fds[i] = h->link_fds[i] = -1;
  verifier_log[0] = 0;

  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_LRU_HASH;
  attr.key_size = sizeof(uint64_t);
  attr.value_size = sizeof(struct bpf_attr_record);
  attr.max_entries = max_entries;
  memcpy(attr.map_name, "warden_attr", sizeof "warden_attr");
  h->map_fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
  if (h->map_fd < 0) return fail(env, h, "cannot create the BPF attribution map", errno);

  h->cgroup_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (h->cgroup_fd < 0) {
    char what[4200];
    snprintf(what, sizeof what, "cannot open cgroup %s", path);
    return fail(env, h, what, errno);
  }
  struct bpf_task_offsets offsets;
  bpf_btf_offsets(&offsets); /* unknown: the programs record no command line */
  for (size_t i = 0; i < HOOK_COUNT; i++) {
    int fd = load_program(h->map_fd, i, &offsets);
    if (fd < 0 && offsets.known) {
      /* A kernel whose verifier refuses the probe reads here: record without the command line. */
      offsets.known = 0;
      fd = load_program(h->map_fd, i, &offsets);
    }
    if (fd < 0) {
      char what[96];
      snprintf(what, sizeof what, "the verifier refused BPF program %zu (attach type %d)", i, HOOKS[i].attach);
      return fail(env, h, what, -fd);
    }
    h->prog_fds[i] = fd;
    memset(&attr, 0, sizeof attr);
    attr.link_create.prog_fd = (uint32_t)fd;
    attr.link_create.target_fd = (uint32_t)h->cgroup_fd;
    attr.link_create.attach_type = HOOKS[i].attach;
    int link = (int)sys_bpf(BPF_LINK_CREATE, &attr);
    if (link < 0) {
      char what[4200];
      snprintf(what, sizeof what, "cannot attach BPF program %zu to cgroup %s", i, path);
      return fail(env, h, what, errno);
    }
    h->link_fds[i] = link;
  }
  napi_value handle;
  if (napi_create_external(env, h, finalize, NULL, &handle) != napi_ok) {
    handle_free(h);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot create the handle", ENOMEM);
  }
  return handle;
}

static struct bpf_attr_handle *handle_of(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc) {
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  if (*argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) return NULL;
  return data;
}

/* The map's fd for socket_lookup, or -1 once closed. */
int bpf_attr_map_fd(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) return -1;
  return ((struct bpf_attr_handle *)data)->map_fd;
}

int bpf_attr_lookup(int map_fd, uint64_t cookie, struct bpf_attr_record *out) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)map_fd;
  attr.key = (uint64_t)(uintptr_t)&cookie;
  attr.value = (uint64_t)(uintptr_t)out;
  return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0 ? 0 : -errno;
}

/* bpfAttributionEntries(handle) -> number of records in the map (walks the keys; for tests and stats). */
napi_value bpf_attribution_entries(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  struct bpf_attr_handle *h = handle_of(env, info, argv, &argc);
  if (h == NULL || h->map_fd < 0) {
    napi_throw_type_error(env, NULL, "bpfAttributionEntries(open handle)");
    return NULL;
  }
  uint64_t key, next;
  uint32_t count = 0;
  union bpf_attr attr;
  for (int first = 1;; first = 0) {
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)h->map_fd;
    attr.key = first ? 0 : (uint64_t)(uintptr_t)&key;
    attr.next_key = (uint64_t)(uintptr_t)&next;
    if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) != 0) break;
    key = next;
    count++;
  }
  napi_create_uint32(env, count, &result);
  return result;
}

/* bpfAttributionClose(handle): detaches the programs and frees the map. */
napi_value bpf_attribution_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct bpf_attr_handle *h = handle_of(env, info, argv, &argc);
  if (h == NULL) {
    napi_throw_type_error(env, NULL, "bpfAttributionClose(handle)");
    return NULL;
  }
  for (size_t i = 0; i < HOOK_COUNT; i++) {
    if (h->link_fds[i] >= 0) close(h->link_fds[i]);
    if (h->prog_fds[i] >= 0) close(h->prog_fds[i]);
    h->link_fds[i] = h->prog_fds[i] = -1;
  }
  if (h->cgroup_fd >= 0) close(h->cgroup_fd);
  if (h->map_fd >= 0) close(h->map_fd);
  h->cgroup_fd = h->map_fd = -1;
  return NULL;
}
