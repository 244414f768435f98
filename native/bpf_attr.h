/* Attribution by BPF (bpf_attr.c): the record the cgroup programs keep per socket cookie. */
#ifndef WARDEN_BPF_ATTR_H
#define WARDEN_BPF_ATTR_H
#include <node_api.h>
#include <stdint.h>

/* Layout written by the programs (stack r10-48 .. r10-8): do not reorder. */
struct bpf_attr_record {
  uint64_t pid_tgid; /* thread id low, process id (tgid) high, in the initial pid namespace */
  uint64_t uid_gid;  /* uid low, gid high */
  uint64_t boot_ns;  /* CLOCK_BOOTTIME when recorded */
  char comm[16];
};

/* The map fd of an open handle (from bpfAttributionOpen), or -1. */
int bpf_attr_map_fd(napi_env env, napi_value handle);
/* Looks one cookie up; 0 or -errno (-ENOENT: not recorded). */
int bpf_attr_lookup(int map_fd, uint64_t cookie, struct bpf_attr_record *out);
#endif
