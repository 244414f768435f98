/* Attribution by BPF (bpf_attr.c): the record the cgroup programs keep per socket cookie. */
#ifndef WARDEN_BPF_ATTR_H
#define WARDEN_BPF_ATTR_H
#include <node_api.h>
#include <stdint.h>

#include "bpf_insn.h"

/* Bytes of the command line a record holds; a longer one is read from /proc instead. */
#define BPF_ATTR_ARGS 256

/* Layout written by the programs (on their stack, just below the key): do not reorder. */
struct bpf_attr_record {
  uint64_t pid_tgid; /* thread id low, process id (tgid) high, in the initial pid namespace */
  uint64_t uid_gid;  /* uid low, gid high */
  uint64_t boot_ns;  /* CLOCK_BOOTTIME when recorded */
  char comm[16];
  uint32_t args_len; /* arg_end - arg_start of the process (0: not recorded) */
  int32_t args_read; /* bpf_probe_read_user's result: 0 when args holds the bytes */
  char args[BPF_ATTR_ARGS];
  /* The executable (mm->exe_file) then: exe_read is 0 when its inode was read, mnt_read when its
   * mount's id was, 1 when the kernel's type information gave no offsets, < 0 when a read failed. */
  uint64_t exe_ino;
  int64_t exe_ctime_sec;
  uint32_t exe_ctime_nsec; /* bit 31 may be the kernel's I_CTIME_QUERIED flag: masked by the reader */
  uint32_t exe_dev;        /* the kernel's dev_t: major << 20 | minor */
  uint32_t exe_generation;
  uint32_t exe_fs_magic;
  int32_t exe_mnt_id; /* as /proc/PID/fdinfo's mnt_id */
  int32_t exe_read;
  int32_t mnt_read;
  uint32_t euid; /* effective uid (task->real_cred, as /proc/PID/status) */
  uint32_t ppid; /* the parent's tgid (task->real_parent) */
  int32_t cred_read; /* as exe_read, for euid and ppid */
  uint32_t hook;     /* which program recorded it: BPF_ATTR_HOOK_* */
  int32_t path_read; /* as exe_read, for path_hash */
  /* The executable's path within its mount: each dentry's name hash and length folded in, from the
   * file up BPF_ATTR_PATH_LEVELS parents; path_rest is 0 when that reached the mount's root. */
  uint64_t path_hash;
  uint64_t path_rest;
};

/* Levels of the executable's path the programs fold into path_hash: deeper paths are not named from the record. */
#define BPF_ATTR_PATH_LEVELS 16

enum { BPF_ATTR_HOOK_CREATE, BPF_ATTR_HOOK_CONNECT4, BPF_ATTR_HOOK_CONNECT6, BPF_ATTR_HOOK_SENDMSG4, BPF_ATTR_HOOK_SENDMSG6,
       BPF_ATTR_HOOK_BIND4, BPF_ATTR_HOOK_BIND6 };

/* The numbers of an attribution answer (sock_diag.c socketLookup, bpf_tuple.c bpfTupleLookup): NaN where not read. */
enum { N_INODE, N_UID, N_STATE, N_RECORD, N_PID, N_TID, N_RUID, N_GID, N_BOOT_NS, N_HOOK, N_EUID, N_PARENT,
       N_EXE_MOUNT, N_EXE_MAGIC, N_COUNT };

/* Whether the record holds the executable's whole identity (all read, a path of at most BPF_ATTR_PATH_LEVELS levels). */
static inline int bpf_attr_exe_known(const struct bpf_attr_record *r) {
  return r->exe_read == 0 && r->mnt_read == 0 && r->path_read == 0 && r->path_rest == 0 && r->exe_ino != 0;
}

/* What a record says as numbers: who, which program made it (create, connect, send; a bind counts as a
 * create: a record made before any connect or send, named by its pid and /proc), the effective uid and
 * parent, the executable's mount and file system. */
static inline void bpf_attr_record_numbers(double *n, const struct bpf_attr_record *r) {
  static const uint8_t hook_numbers[] = {0, 1, 1, 2, 2, 0, 0}; /* by BPF_ATTR_HOOK_* */
  n[N_RECORD] = 1;
  n[N_PID] = (double)(uint32_t)(r->pid_tgid >> 32);
  n[N_TID] = (double)(uint32_t)r->pid_tgid;
  n[N_RUID] = (double)(uint32_t)r->uid_gid;
  n[N_GID] = (double)(uint32_t)(r->uid_gid >> 32);
  n[N_BOOT_NS] = (double)r->boot_ns;
  if (r->hook < sizeof hook_numbers) n[N_HOOK] = hook_numbers[r->hook];
  if (r->cred_read == 0) {
    n[N_EUID] = r->euid;
    if (r->ppid != 0) n[N_PARENT] = r->ppid;
  }
  if (!bpf_attr_exe_known(r)) return;
  n[N_EXE_MOUNT] = r->exe_mnt_id;
  n[N_EXE_MAGIC] = r->exe_fs_magic;
}

/* Offsets in the running kernel's structures (bpf_btf.c); known = 0 when they could not be found. */
struct bpf_task_offsets {
  int known; /* the command line */
  int32_t task_mm;
  int32_t mm_arg_start;
  int32_t mm_arg_end;
  int exe_known; /* the executable's identity (mm->exe_file) */
  int32_t mm_exe_file, file_inode, file_mnt, inode_ino, inode_sb, inode_generation, inode_ctime_sec,
      inode_ctime_nsec, sb_dev, sb_magic;
  int32_t vfsmount_mnt_id; /* struct mount's mnt_id from its struct vfsmount (may be negative) */
  int32_t file_dentry, dentry_parent; /* f_path.dentry; d_parent, followed by d_name.hash_len */
  int cred_known; /* the effective uid and the parent's tgid */
  int32_t task_real_cred, cred_euid, task_real_parent, task_tgid;
  /* The socket's inode number and owner (sk->sk_socket->file->f_inode->i_ino, sk->sk_uid): bpf_tuple.c. */
  int sock_known;
  int32_t sock_socket, sock_uid, socket_file, sock_file_inode, sock_inode_ino;
  /* sk->sk_cookie (0 until someone asks for the cookie): a cache hit's connect deletes no record of a
   * socket that had none (bpf_attr.c). */
  int cookie_known;
  int32_t sock_cookie;
};

/*
 * The verdict cache (docs/attribution.md, "Verdict cache"): a key the connect programs build from
 * the record they just made and the address connected to; the engine inserts the keys of outgoing
 * TCP connections it allowed by a decision nothing outside the key could change. Layout shared
 * with src/kernel/verdict-cache-key.ts: do not reorder.
 */
struct vcache_key {
  uint64_t exe_ino;
  int64_t exe_ctime_sec;
  uint64_t path_hash;
  uint64_t unread; /* exe_read | mnt_read | path_read | cred_read | path_rest: 0 when all was read */
  uint32_t exe_ctime_nsec; /* without I_CTIME_QUERIED (bit 30 and up masked, as the identity's id) */
  uint32_t exe_dev;
  uint32_t exe_generation;
  int32_t exe_mnt_id;
  uint32_t euid;
  uint32_t port; /* the remote port in network byte order, in the low 16 bits */
  uint8_t addr[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
  uint32_t generation; /* the cache's generation when inserted: a new one empties the cache at once */
  uint32_t zero;
};
/* What a connect program writes to the ring buffer on a hit (the engine logs and counts it). */
struct vcache_event {
  uint64_t pid_tgid;
  uint64_t boot_ns;
  uint64_t cookie; /* the socket's cookie: names the connection (ss -e shows it as sk:) */
  uint32_t id; /* the cache entry's value: the engine's number for the decision */
  uint32_t uid; /* the real uid (bpf_get_current_uid_gid) */
};
/* The cache's one-element state array: the generation the programs put in keys, and counters. */
struct vcache_state {
  uint64_t generation;
  uint64_t hits;
  uint64_t misses;
  uint64_t dropped; /* hits whose event did not fit in the ring buffer: queued instead (also misses) */
  uint64_t engine_tgid; /* the engine's own connections always miss: the key cannot tell it from other node programs */
};
/* Warden's mark bit for "decided by the cache" (src/kernel/marks.ts MARK_DECIDED). */
#define VCACHE_MARK 0x04000000u
#define VCACHE_RING_BYTES (512u * 1024u)

struct bpf_cache {
  int map_fd, state_fd, ring_fd; /* -1: no cache */
  void *consumer; /* the ring's consumer page (read-write) */
  void *producer; /* its producer page and data, twice mapped (read-only) */
  size_t page;
  char refused[200]; /* why the programs do without the cache, when they do */
};
/* Creates the cache's maps (entries > 0) and maps the ring; 0 or -errno. */
int bpf_cache_create(struct bpf_cache *c, uint32_t entries);
void bpf_cache_free(struct bpf_cache *c);
/* The cache of an open handle, or NULL. */
struct bpf_cache *bpf_attr_cache(napi_env env, napi_value handle);

/*
 * Loads the mark guards (bpf_guard.c: a cgroup/setsockopt and a sock_ops program) and attaches
 * them to the cgroup; `*first` and `*second` are their links (closing both detaches them), and
 * `*second_prog` the sock_ops program's fd (kept: the connect-time slots' program, which includes
 * the guard, takes its place on the link and gives it back); 0 or -errno.
 */
int bpf_guard_attach(int cgroup_fd, int *first, int *second, int *second_prog);
/* Emits the sock_ops guard's instructions (r6 = ctx): exits by to_exit, else falls through. */
void bpf_guard_emit(program *p);
/* The sock_ops guard's link and program of an open handle with a cache, when `cgroup` is the handle's
 * cgroup directory (-1 and -1 otherwise). */
void bpf_attr_guard(napi_env env, napi_value handle, const char *cgroup, int *link_fd, int *prog_fd);
/* Reads the offsets from /sys/kernel/btf/vmlinux; 0 or -1. */
int bpf_btf_offsets(struct bpf_task_offsets *out);
/* The map fd of an open handle (from bpfAttributionOpen), or -1. */
int bpf_attr_map_fd(napi_env env, napi_value handle);
/* Looks one cookie up; 0 or -errno (-ENOENT: not recorded). */
int bpf_attr_lookup(int map_fd, uint64_t cookie, struct bpf_attr_record *out);
#endif
