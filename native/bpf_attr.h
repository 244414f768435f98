/* Attribution by BPF (bpf_attr.c): the record the cgroup programs keep per socket cookie. */
#ifndef WARDEN_BPF_ATTR_H
#define WARDEN_BPF_ATTR_H
#include <node_api.h>
#include <stdint.h>

/* Bytes of the command line a record holds; a longer one is read from /proc instead. */
#define BPF_ATTR_ARGS 256

/* Layout written by the programs (stack r10-312 .. r10-8): do not reorder. */
struct bpf_attr_record {
  uint64_t pid_tgid; /* thread id low, process id (tgid) high, in the initial pid namespace */
  uint64_t uid_gid;  /* uid low, gid high */
  uint64_t boot_ns;  /* CLOCK_BOOTTIME when recorded */
  char comm[16];
  uint32_t args_len; /* arg_end - arg_start of the process (0: not recorded) */
  int32_t args_read; /* bpf_probe_read_user's result: 0 when args holds the bytes */
  char args[BPF_ATTR_ARGS];
};

/* Offsets in the running kernel's structures (bpf_btf.c); known = 0 when they could not be found. */
struct bpf_task_offsets {
  int known;
  int32_t task_mm;
  int32_t mm_arg_start;
  int32_t mm_arg_end;
};

/* Reads the offsets from /sys/kernel/btf/vmlinux; 0 or -1. */
int bpf_btf_offsets(struct bpf_task_offsets *out);
/* The map fd of an open handle (from bpfAttributionOpen), or -1. */
int bpf_attr_map_fd(napi_env env, napi_value handle);
/* Looks one cookie up; 0 or -errno (-ENOENT: not recorded). */
int bpf_attr_lookup(int map_fd, uint64_t cookie, struct bpf_attr_record *out);
#endif
