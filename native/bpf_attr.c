/*
 * Attribution by BPF (docs/attribution.md, "BPF path"): small cgroup programs, assembled here
 * instruction by instruction and loaded with the raw bpf() syscall (no libbpf, no ELF), record who
 * made each socket in an LRU hash keyed by the socket cookie:
 * - cgroup/sock_create (every inet socket but TCP's), cgroup/bind4, bind6 (TCP: a listener's
 *   record), cgroup/connect4, connect6 (TCP and connected UDP), cgroup/sendmsg4, sendmsg6
 *   (unconnected UDP sends): the current thread's pid and tgid, uid and
 *   gid, comm and the boot-time clock (bpf_ktime_get_boot_ns) go into the map, and, where the
 *   kernel's type information gives the offsets (bpf_btf.c), the first BPF_ATTR_ARGS bytes of the
 *   process's command line (bpf_probe_read_user: it never waits, a page not in memory fails), the
 *   identity of its executable file (mm->exe_file's inode number, generation, change time, device,
 *   file system magic and mount id: the engine names a known executable without /proc), its
 *   effective uid and its parent's tgid (bpf_probe_read_kernel, offsets from BTF);
 * - cgroup/sock_release deletes the socket's entry (and the map is an LRU besides: it cannot grow
 *   beyond its size even if a release were missed).
 * The programs are attached with bpf links: they are detached when the links are closed, and by the
 * kernel when this process dies, so a crashed engine leaves nothing attached.
 * At decision time sock_diag gives the packet's socket cookie (sock_diag.c) and one
 * BPF_MAP_LOOKUP_ELEM gives the record (bpf_attr_lookup, used by socket_lookup).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"
#include "bpf_attr.h"
#include "bpf_insn.h"
#include "nl.h"

/* The eight attach points; the same record program serves the first seven (index: the record's
 * hook, BPF_ATTR_HOOK_*). TCP sockets are recorded at bind (listeners) and connect, not creation. */
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
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_BIND, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_BIND, 0},
    {BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE, 1},
};
_Static_assert(BPF_ATTR_HOOK_BIND6 == 6, "the record's hook is the index in HOOKS");
#define HOOK_COUNT (sizeof HOOKS / sizeof HOOKS[0])

struct bpf_attr_handle {
  struct bpf_cache cache;
  int map_fd;
  int cgroup_fd;
  int prog_fds[HOOK_COUNT];
  int link_fds[HOOK_COUNT];
  int direct; /* the programs read the executable's identity by direct loads (direct_identity), not probe reads */
  int guard_retransmit_prog; /* the sock_ops guard's program alone (bpf_tuple.c swaps it on its link) */
  int guard_setsockopt, guard_retransmit; /* bpf_guard.c links: no setsockopt, nor a 32-bit one, leaves the cache's mark bit for a SYN (-1: none) */
};

static char verifier_log[16384];

/*
 * Stack of the programs: the key (cookie) at r10-8, the record just below it, scratch slots for the
 * kernel pointers below that. A failed probe read zeroes its destination, so no step needs a
 * branch: after a failed pointer read every read through it fails too, and the record keeps the
 * read's result (args_read, exe_read, mnt_read, cred_read < 0) to say so.
 */
#define KEY (-8)
#define REC (KEY - (int)sizeof(struct bpf_attr_record))
#define FIELD(f) (REC + (int)offsetof(struct bpf_attr_record, f))
enum { TASK = REC - 8, MM = REC - 16, ARG_START = REC - 24, ARG_END = REC - 32, FILE_ = REC - 40,
       INODE = REC - 48, SB = REC - 56, MNT = REC - 64, CRED = REC - 72, PARENT = REC - 80,
       DENTRY = REC - 96 /* 16 bytes: d_parent, d_name.hash_len */, CTX = REC - 104,
       /* A cached connect: 0 when the socket had no cookie before it (so no record), else not 0. */
       HAD_COOKIE = REC - 112 };
_Static_assert(HAD_COOKIE >= -512, "the programs' stack is 512 bytes");
/* The verdict cache's key, event (over the key, once looked up) and new mark are built in the dead
 * slots of the kernel pointers (CTX is kept): the record stays whole, stored after the lookup. */
enum { CKEY = DENTRY, CEVENT = CKEY, CMARK = REC - 16, CZERO = REC - 8 };
_Static_assert(CKEY + (int)sizeof(struct vcache_key) <= CMARK && CMARK + 8 <= CZERO && CZERO + 8 <= REC,
               "the cache's slots fit between the record and CTX");
_Static_assert(CTX + 8 <= CKEY && (int)sizeof(struct vcache_event) <= (int)sizeof(struct vcache_key),
               "the key's slots do not reach CTX, and the event fits in them");
_Static_assert(sizeof(struct bpf_attr_record) % 8 == 0, "the record is stored in 8-byte words");

/* *(dst_slot) = the `size` bytes at *(u64 *)(r10 + ptr_slot) + off, by bpf_probe_read_kernel; r0 its result. */
static void read_kernel(program *p, int dst, int ptr_slot, int32_t off, int size) {
  EMIT(p, LDX_DW(R3, R10, ptr_slot), ADD64_IMM(R3, off), MOV64_REG(R1, R10), ADD64_IMM(R1, dst),
       MOV64_IMM(R2, size), CALL(BPF_FUNC_probe_read_kernel));
}

/* The prologue both kinds of program share: the socket's cookie, the map key, at r10-8. */
static void cookie_key(program *p) {
  EMIT(p, MOV64_REG(R6, R1), CALL(BPF_FUNC_get_socket_cookie), STX_DW(R10, R0, KEY));
}

/* Calls a map helper (update or delete) on the key at r10-8; r3 and r4 set by the caller as needed. */
static void map_call(program *p, int map_fd, int helper) {
  EMIT(p, LD_MAP_FD(R1, map_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, KEY), CALL(helper),
       MOV64_IMM(R0, 1), /* 1: allow; these programs never refuse anything */
       EXIT());
}

/*
 * The executable's path within its mount, as a fingerprint: from f_path.dentry up its parents, each
 * level's {d_parent, d_name.hash_len} read at once and folded in (r7 = r7 * K + hash_len; the
 * kernel salts a name's hash with its parent, so a name moved to another directory hashes
 * differently). A rename anywhere on the path changes it; a file's own rename, link or deletion
 * changes its change time too. r6 gathers the reads' results (any failure leaves it negative); r8 is
 * the dentry. At the mount's root d_parent is the dentry itself, so the walk stays there: path_rest
 * (that dentry minus its parent) is 0 when the path had at most BPF_ATTR_PATH_LEVELS levels.
 */
static void path_tail(program *p, const size_t *root);

static void path_fingerprint(program *p, const struct bpf_task_offsets *off) {
  size_t root[BPF_ATTR_PATH_LEVELS];
  EMIT(p, MOV64_IMM(R6, 0), MOV64_IMM(R7, 0));
  read_kernel(p, DENTRY, FILE_, off->file_dentry, 8);
  EMIT(p, OR64_REG(R6, R0), LDX_DW(R8, R10, DENTRY));
  for (int level = 0; level <= BPF_ATTR_PATH_LEVELS; level++) {
    EMIT(p, MOV64_REG(R3, R8), ADD64_IMM(R3, off->dentry_parent), MOV64_REG(R1, R10), ADD64_IMM(R1, DENTRY),
         MOV64_IMM(R2, 16), CALL(BPF_FUNC_probe_read_kernel), OR64_REG(R6, R0));
    if (level == BPF_ATTR_PATH_LEVELS) break; /* the last read only says whether the root was reached */
    /* At the root (its own parent) every level left would read the root again and fold its hash:
     * those folds are done at once (the tail below), without the reads. */
    EMIT(p, LDX_DW(R1, R10, DENTRY), LDX_DW(R9, R10, DENTRY + 8));
    root[level] = jump(p, JEQ_REG(R1, R8));
    EMIT(p, MOV64_REG(R8, R1), MUL64_IMM(R7, 0x5bd1e995), ADD64_REG(R7, R9));
  }
  path_tail(p, root);
}

/* The end of both fingerprints: r6 the reads' results, r7 the hash, r8 the last dentry, r9 its hash_len,
 * DENTRY its parent; root[L] the jump taken at level L when the root was reached. */
static void path_tail(program *p, const size_t *root) {
  size_t done = jump(p, JA());
  /* Reached the root at level L: its hash (r9) folded once for each of the levels L..LEVELS-1, as the
   * reads of those levels would have; the root's d_parent (r8) left in DENTRY, so path_rest is 0. */
  for (int level = 0; level < BPF_ATTR_PATH_LEVELS; level++) {
    land(p, root[level]);
    EMIT(p, MUL64_IMM(R7, 0x5bd1e995), ADD64_REG(R7, R9));
  }
  land(p, done);
  EMIT(p, LDX_DW(R1, R10, DENTRY), MOV64_REG(R2, R8), SUB64_REG(R2, R1), STX_DW(R10, R2, FIELD(path_rest)),
       STX_DW(R10, R7, FIELD(path_hash)), STX_W(R10, R6, FIELD(path_read)));
}

/*
 * The same identity by direct loads (the program loaded with `direct`): bpf_get_current_task_btf
 * gives the task as a BTF pointer, and each load through it or through a pointer loaded from it is
 * made fault-tolerant by the verifier (a load that faults gives 0), where each bpf_probe_read_kernel
 * is a helper call with its checks. A read result is then whether the pointer read through was not
 * NULL (-EFAULT if it was, as the probe read of a NULL pointer returns): exe_read the inode's,
 * cred_read the cred's, path_read every dentry's. The mount id stays a probe read: it lies outside
 * struct vfsmount (in the struct mount around it), where a BTF pointer may not load.
 */
/* Skips the next instruction if the register is not 0. */
#define SKIP_IF_SET(r) INSN(BPF_JMP | BPF_JNE | BPF_K, r, 0, 1, 0)

static void fault_if_null(program *p, int reg, int result) {
  EMIT(p, MOV64_IMM(R1, 0), SKIP_IF_SET(reg), MOV64_IMM(R1, -EFAULT), STX_W(R10, R1, result));
}

static void direct_identity(program *p, const struct bpf_task_offsets *off) {
  EMIT(p, CALL(BPF_FUNC_get_current_task_btf), MOV64_REG(R7, R0), LDX_DW(R6, R7, off->task_real_cred),
       LDX_W(R2, R6, off->cred_euid), STX_W(R10, R2, FIELD(euid)));
  fault_if_null(p, R6, FIELD(cred_read));
  /* r8 the file, r9 its inode, r2 the inode's super block. */
  EMIT(p, LDX_DW(R8, R7, off->task_mm), LDX_DW(R8, R8, off->mm_exe_file), LDX_DW(R9, R8, off->file_inode),
       LDX_W(R1, R9, off->inode_generation), STX_W(R10, R1, FIELD(exe_generation)),
       LDX_DW(R1, R9, off->inode_ctime_sec), STX_DW(R10, R1, FIELD(exe_ctime_sec)),
       LDX_W(R1, R9, off->inode_ctime_nsec), STX_W(R10, R1, FIELD(exe_ctime_nsec)),
       LDX_DW(R1, R9, off->inode_ino), STX_DW(R10, R1, FIELD(exe_ino)), LDX_DW(R2, R9, off->inode_sb),
       LDX_W(R1, R2, off->sb_dev), STX_W(R10, R1, FIELD(exe_dev)), LDX_W(R1, R2, off->sb_magic),
       STX_W(R10, R1, FIELD(exe_fs_magic)));
  fault_if_null(p, R9, FIELD(exe_read));
  EMIT(p, LDX_DW(R1, R8, off->file_mnt), STX_DW(R10, R1, MNT));
  read_kernel(p, FIELD(exe_mnt_id), MNT, off->vfsmount_mnt_id, 4);
  EMIT(p, STX_W(R10, R0, FIELD(mnt_read)), LDX_DW(R8, R8, off->file_dentry));
  /* The path's fingerprint as path_fingerprint folds it, each level's two words loaded at once. */
  size_t root[BPF_ATTR_PATH_LEVELS];
  EMIT(p, MOV64_IMM(R6, 0), MOV64_IMM(R7, 0), SKIP_IF_SET(R8), MOV64_IMM(R6, -EFAULT));
  for (int level = 0; level <= BPF_ATTR_PATH_LEVELS; level++) {
    EMIT(p, LDX_DW(R1, R8, off->dentry_parent), LDX_DW(R9, R8, off->dentry_parent + 8), STX_DW(R10, R1, DENTRY),
         SKIP_IF_SET(R1), MOV64_IMM(R6, -EFAULT));
    if (level == BPF_ATTR_PATH_LEVELS) break;
    root[level] = jump(p, JEQ_REG(R1, R8));
    EMIT(p, MOV64_REG(R8, R1), MUL64_IMM(R7, 0x5bd1e995), ADD64_REG(R7, R9));
  }
  path_tail(p, root);
}

/* Whether every offset direct_identity and the cookie's load use fits an instruction's 16-bit offset. */
static int direct_fits(const struct bpf_task_offsets *off) {
  const int32_t used[] = {off->task_real_cred, off->cred_euid, off->task_mm, off->mm_exe_file, off->file_inode,
                          off->inode_generation, off->inode_ctime_sec, off->inode_ctime_nsec, off->inode_ino,
                          off->inode_sb, off->sb_dev, off->sb_magic, off->file_mnt, off->file_dentry,
                          off->dentry_parent + 8, off->sock_cookie};
  for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
    if (used[i] < 0 || used[i] > INT16_MAX) return 0;
  return 1;
}

/* Deletes the record under the key at r10-8 if any, looked up first without a lock: a delete takes
 * the bucket lock with interrupts off even for a missing key (every cache hit's socket). */
static void delete_record(program *p, int map_fd) {
  EMIT(p, LD_MAP_FD(R1, map_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, KEY), CALL(BPF_FUNC_map_lookup_elem));
  size_t none = jump(p, JEQ_IMM(R0, 0));
  EMIT(p, LD_MAP_FD(R1, map_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, KEY), CALL(BPF_FUNC_map_delete_elem));
  land(p, none);
}

/* The record's update: value at the record's place on the stack. */
static void map_update(program *p, int map_fd) {
  EMIT(p, MOV64_REG(R3, R10), ADD64_IMM(R3, REC), MOV64_IMM(R4, BPF_ANY));
  map_call(p, map_fd, BPF_FUNC_map_update_elem);
}

#define KEYF(f) (CKEY + (int)offsetof(struct vcache_key, f))
#define EVF(f) (CEVENT + (int)offsetof(struct vcache_event, f))
#define STATEF(f) ((int)offsetof(struct vcache_state, f))
#define SOCKADDR(f) ((int)offsetof(struct bpf_sock_addr, f))

/* Copies a 4- or 8-byte field of the record on the stack into the key. */
static void key_field(program *p, int to, int from, int size) {
  if (size == 8) EMIT(p, LDX_DW(R1, R10, from), STX_DW(R10, R1, to));
  else EMIT(p, LDX_W(R1, R10, from), STX_W(R10, R1, to));
}

/* The command line: arg_end - arg_start and the first BPF_ATTR_ARGS bytes (mm at MM). */
static void read_command_line(program *p, const struct bpf_task_offsets *off) {
  read_kernel(p, ARG_START, MM, off->mm_arg_start, 8);
  read_kernel(p, ARG_END, MM, off->mm_arg_end, 8);
  EMIT(p, LDX_DW(R1, R10, ARG_END), LDX_DW(R2, R10, ARG_START), SUB64_REG(R1, R2),
       STX_W(R10, R1, FIELD(args_len)), MOV64_REG(R1, R10), ADD64_IMM(R1, FIELD(args)),
       MOV64_IMM(R2, BPF_ATTR_ARGS), LDX_DW(R3, R10, ARG_START), CALL(BPF_FUNC_probe_read_user),
       STX_W(R10, R0, FIELD(args_read)));
}

/* The parent's tgid (task at TASK; the result of these reads is not recorded, as before). */
static void read_parent(program *p, const struct bpf_task_offsets *off) {
  read_kernel(p, PARENT, TASK, off->task_real_parent, 8);
  read_kernel(p, FIELD(ppid), PARENT, off->task_tgid, 4);
}

/* Stores the record under the cookie (r6-r9 kept). With `rest`, first what only the record holds,
 * not the cache's key: the command line and parent (task and mm read again: the key was over them). */
static void store_record(program *p, int map_fd, const struct bpf_task_offsets *rest) {
  if (rest != NULL) {
    EMIT(p, CALL(BPF_FUNC_get_current_task), STX_DW(R10, R0, TASK));
    read_kernel(p, MM, TASK, rest->task_mm, 8);
    read_command_line(p, rest);
    read_parent(p, rest);
  }
  EMIT(p, LD_MAP_FD(R1, map_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, KEY), MOV64_REG(R3, R10), ADD64_IMM(R3, REC),
       MOV64_IMM(R4, BPF_ANY), CALL(BPF_FUNC_map_update_elem));
}

/* bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &r2, 4); r6 is the context. */
static void set_mark(program *p) {
  EMIT(p, STX_W(R10, R2, CMARK), MOV64_REG(R1, R6), MOV64_IMM(R2, 1 /* SOL_SOCKET */),
       MOV64_IMM(R3, 36 /* SO_MARK */), MOV64_REG(R4, R10), ADD64_IMM(R4, CMARK), MOV64_IMM(R5, 4),
       CALL(BPF_FUNC_setsockopt));
}

/*
 * The verdict cache's part of a connect program (the record is read but not yet stored; the
 * context was kept at CTX, the state's generation is part of the key): for a TCP socket, the key
 * from the record and the address; on a hit an event goes to the ring buffer and the socket's mark
 * gets VCACHE_MARK (the ruleset accepts its new connection without the queue). The record's
 * command line and parent are read only on the way to storing it (store_record). A hit stores no
 * record and removes the socket's earlier one (of its bind or an earlier connect; none when it had no cookie): its
 * connection is never queued while the engine lives, and one queued after all (the engine gone,
 * the cache given up) is found by sock_diag and named from /proc, never from another process's
 * record. When the ring is full (never waited for) the hit is counted as dropped and handled as a
 * miss: queued, so still decided and logged. Every other connection stores the record, and a miss
 * clears the bit (a socket connecting again keeps no old verdict).
 */
static void cache_program(program *p, const struct bpf_cache *c, size_t hook, int map_fd,
                          const struct bpf_task_offsets *off) {
  size_t store[8], exits[5];
  size_t ns = 0, n = 0;
  EMIT(p, LDX_DW(R6, R10, CTX), LDX_W(R1, R6, SOCKADDR(type)));
  store[ns++] = jump(p, JNE_IMM(R1, 1 /* SOCK_STREAM */));
  EMIT(p, LDX_W(R1, R6, SOCKADDR(protocol)));
  store[ns++] = jump(p, JNE_IMM(R1, 6 /* IPPROTO_TCP */));
  EMIT(p, ST_DW(R10, CZERO, 0), LD_MAP_FD(R1, c->state_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, CZERO),
       CALL(BPF_FUNC_map_lookup_elem));
  store[ns++] = jump(p, JEQ_IMM(R0, 0));
  /* r7 the state, r8 the socket, r9 its mark; the engine's own connections miss. */
  EMIT(p, MOV64_REG(R7, R0), LDX_DW(R8, R6, SOCKADDR(sk)), LDX_W(R9, R8, (int)offsetof(struct bpf_sock, mark)),
       LDX_DW(R1, R10, FIELD(pid_tgid)), RSH64_IMM(R1, 32), LDX_DW(R2, R7, STATEF(engine_tgid)));
  size_t engine = jump(p, JEQ_REG(R1, R2));
  key_field(p, KEYF(exe_ino), FIELD(exe_ino), 8);
  key_field(p, KEYF(exe_ctime_sec), FIELD(exe_ctime_sec), 8);
  key_field(p, KEYF(path_hash), FIELD(path_hash), 8);
  EMIT(p, LDX_W(R1, R10, FIELD(exe_read)), LDX_W(R2, R10, FIELD(mnt_read)), OR64_REG(R1, R2),
       LDX_W(R2, R10, FIELD(path_read)), OR64_REG(R1, R2), LDX_W(R2, R10, FIELD(cred_read)), OR64_REG(R1, R2),
       LDX_DW(R2, R10, FIELD(path_rest)), OR64_REG(R1, R2), STX_DW(R10, R1, KEYF(unread)),
       LDX_W(R1, R10, FIELD(exe_ctime_nsec)), AND64_IMM(R1, 0x3fffffff), STX_W(R10, R1, KEYF(exe_ctime_nsec)));
  key_field(p, KEYF(exe_dev), FIELD(exe_dev), 4);
  key_field(p, KEYF(exe_generation), FIELD(exe_generation), 4);
  key_field(p, KEYF(exe_mnt_id), FIELD(exe_mnt_id), 4);
  key_field(p, KEYF(euid), FIELD(euid), 4);
  EMIT(p, LDX_W(R1, R6, SOCKADDR(user_port)), AND64_IMM(R1, 0xffff), STX_W(R10, R1, KEYF(port)));
  if (HOOKS[hook].attach == BPF_CGROUP_INET4_CONNECT) {
    EMIT(p, ST_DW(R10, KEYF(addr), 0), ST_W(R10, KEYF(addr) + 8, (int32_t)0xffff0000u /* 00 00 ff ff */),
         LDX_W(R1, R6, SOCKADDR(user_ip4)), STX_W(R10, R1, KEYF(addr) + 12));
  } else {
    for (int i = 0; i < 4; i++)
      EMIT(p, LDX_W(R1, R6, SOCKADDR(user_ip6) + 4 * i), STX_W(R10, R1, KEYF(addr) + 4 * i));
  }
  EMIT(p, LDX_DW(R1, R7, STATEF(generation)), STX_W(R10, R1, KEYF(generation)), ST_W(R10, KEYF(zero), 0),
       LD_MAP_FD(R1, c->map_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, CKEY), CALL(BPF_FUNC_map_lookup_elem));
  size_t miss = jump(p, JEQ_IMM(R0, 0));
  /* A hit: its event (over the key, which is no longer needed), then the mark bit set, counted. The
     event wakes the engine's watch of the ring (bpf_cache.c) only when it lands in a ring the engine
     had emptied: the kernel's own choice without BPF_RB_NO_WAKEUP or BPF_RB_FORCE_WAKEUP. */
  EMIT(p, LDX_W(R1, R0, 0), STX_W(R10, R1, EVF(id)), LDX_DW(R1, R10, FIELD(pid_tgid)),
       STX_DW(R10, R1, EVF(pid_tgid)), LDX_DW(R1, R10, FIELD(boot_ns)), STX_DW(R10, R1, EVF(boot_ns)),
       LDX_W(R1, R10, FIELD(uid_gid)), STX_W(R10, R1, EVF(uid)), LDX_DW(R1, R10, KEY),
       STX_DW(R10, R1, EVF(cookie)), LD_MAP_FD(R1, c->ring_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, CEVENT),
       MOV64_IMM(R3, sizeof(struct vcache_event)), MOV64_IMM(R4, 0),
       CALL(BPF_FUNC_ringbuf_output));
  /* No room for the event (the engine is behind): the connection goes to the queue, which logs it. */
  size_t full = jump(p, JNE_IMM(R0, 0));
  EMIT(p, MOV64_IMM(R1, 1), ATOMIC_ADD_DW(R7, R1, STATEF(hits)), MOV64_REG(R2, R9),
       OR64_IMM(R2, (int32_t)VCACHE_MARK));
  size_t marked = jump(p, JEQ_REG(R9, R2));
  set_mark(p);
  /* Not set: the connection is queued as without the cache, and named by its record. */
  store[ns++] = jump(p, JNE_IMM(R0, 0));
  land(p, marked);
  /* A socket that had no cookie before this connect has no record (records are keyed by it): most
   * hits' sockets. The lookup of a missing key reads a cold bucket of the map. */
  EMIT(p, LDX_DW(R1, R10, HAD_COOKIE));
  exits[n++] = jump(p, JEQ_IMM(R1, 0));
  delete_record(p, map_fd);
  exits[n++] = jump(p, JA());
  land(p, full);
  EMIT(p, MOV64_IMM(R1, 1), ATOMIC_ADD_DW(R7, R1, STATEF(dropped)));
  /* A miss: counted, the record stored, the bit cleared; should the kernel refuse to clear it, the
   * connect is refused (return 0: EPERM): a bit that could not be cleared must not let a connection
   * pass undecided. */
  land(p, miss);
  land(p, engine);
  EMIT(p, MOV64_IMM(R1, 1), ATOMIC_ADD_DW(R7, R1, STATEF(misses)));
  store_record(p, map_fd, off);
  EMIT(p, MOV64_REG(R2, R9), AND64_IMM(R2, (int32_t)~VCACHE_MARK));
  exits[n++] = jump(p, JEQ_REG(R9, R2));
  set_mark(p);
  exits[n++] = jump(p, JEQ_IMM(R0, 0));
  EMIT(p, MOV64_IMM(R0, 0), EXIT());
  for (size_t i = 0; i < ns; i++) land(p, store[i]);
  store_record(p, map_fd, off);
  for (size_t i = 0; i < n; i++) land(p, exits[i]);
  EMIT(p, MOV64_IMM(R0, 1), EXIT());
}

/* The record program: who, the command line, the executable, the effective uid and parent, then the update. */
static void record_program(program *p, int map_fd, size_t hook, const struct bpf_task_offsets *off,
                           const struct bpf_cache *cache, int direct) {
  const int cached = cache != NULL && off->known && off->exe_known && off->cred_known &&
                     (HOOKS[hook].attach == BPF_CGROUP_INET4_CONNECT || HOOKS[hook].attach == BPF_CGROUP_INET6_CONNECT);
  if (cached) {
    /* Whether the socket had a cookie before this program asks for it (cookie_key gives it one):
     * sk->sk_cookie, read through the socket as a tcp_sock; anything unread counts as one. */
    EMIT(p, STX_DW(R10, R1, CTX), ST_DW(R10, HAD_COOKIE, 1));
    if (off->cookie_known) {
      EMIT(p, LDX_DW(R1, R1, SOCKADDR(sk)), CALL(BPF_FUNC_skc_to_tcp_sock));
      size_t not_tcp = jump(p, JEQ_IMM(R0, 0));
      if (direct) {
        EMIT(p, LDX_DW(R1, R0, off->sock_cookie), STX_DW(R10, R1, HAD_COOKIE));
      } else {
        EMIT(p, STX_DW(R10, R0, TASK)); /* TASK: not yet in use */
        read_kernel(p, HAD_COOKIE, TASK, off->sock_cookie, 8);
        size_t read = jump(p, JEQ_IMM(R0, 0));
        EMIT(p, ST_DW(R10, HAD_COOKIE, 1));
        land(p, read);
      }
      land(p, not_tcp);
      EMIT(p, LDX_DW(R1, R10, CTX));
    }
  }
  /* TCP sockets are recorded at bind and connect only; the bind programs record nothing else (the
   * other sockets have their creation's record). r1 is the context, kept. */
  const enum bpf_attach_type attach = HOOKS[hook].attach;
  if (attach == BPF_CGROUP_INET_SOCK_CREATE || attach == BPF_CGROUP_INET4_BIND || attach == BPF_CGROUP_INET6_BIND) {
    const int sock = attach == BPF_CGROUP_INET_SOCK_CREATE;
    EMIT(p, LDX_W(R2, R1, sock ? (int)offsetof(struct bpf_sock, type) : SOCKADDR(type)),
         LDX_W(R3, R1, sock ? (int)offsetof(struct bpf_sock, protocol) : SOCKADDR(protocol)));
    size_t other = jump(p, JNE_IMM(R2, 1 /* SOCK_STREAM */));
    size_t not_tcp = jump(p, JNE_IMM(R3, 6 /* IPPROTO_TCP */));
    if (sock) EMIT(p, MOV64_IMM(R0, 1), EXIT()); /* TCP at creation: not recorded */
    size_t tcp = sock ? 0 : jump(p, JA());
    land(p, other);
    land(p, not_tcp);
    if (!sock) EMIT(p, MOV64_IMM(R0, 1), EXIT()); /* not TCP at bind: not recorded */
    if (!sock) land(p, tcp);
  }
  cookie_key(p);
  EMIT(p, CALL(BPF_FUNC_get_current_pid_tgid), STX_DW(R10, R0, FIELD(pid_tgid)),
       CALL(BPF_FUNC_get_current_uid_gid), STX_DW(R10, R0, FIELD(uid_gid)), CALL(BPF_FUNC_ktime_get_boot_ns),
       STX_DW(R10, R0, FIELD(boot_ns)), MOV64_REG(R1, R10), ADD64_IMM(R1, FIELD(comm)), MOV64_IMM(R2, 16),
       CALL(BPF_FUNC_get_current_comm));
  /* Everything after comm starts zeroed, with "not recorded" (1) in the read results. */
  for (int at = FIELD(args_len); at < KEY; at += 8) EMIT(p, ST_DW(R10, at, 0));
  EMIT(p, ST_W(R10, FIELD(args_read), -1), ST_W(R10, FIELD(exe_read), 1), ST_W(R10, FIELD(mnt_read), 1),
       ST_W(R10, FIELD(cred_read), 1), ST_W(R10, FIELD(path_read), 1), ST_W(R10, FIELD(hook), (int32_t)hook));
  if (!off->known) {
    map_update(p, map_fd);
    return;
  }
  if (direct) {
    /* The command line and parent (not a cached connect's: store_record reads them for a miss) by
     * probe reads, the rest by direct loads. */
    if (!cached) {
      EMIT(p, CALL(BPF_FUNC_get_current_task), STX_DW(R10, R0, TASK));
      read_kernel(p, MM, TASK, off->task_mm, 8);
      read_command_line(p, off);
      read_parent(p, off);
    }
    direct_identity(p, off);
    if (!cached) {
      map_update(p, map_fd);
      return;
    }
    cache_program(p, cache, hook, map_fd, off);
    return;
  }
  EMIT(p, CALL(BPF_FUNC_get_current_task), STX_DW(R10, R0, TASK));
  read_kernel(p, MM, TASK, off->task_mm, 8);
  if (!cached) read_command_line(p, off);
  if (off->exe_known) {
    read_kernel(p, FILE_, MM, off->mm_exe_file, 8);
    read_kernel(p, INODE, FILE_, off->file_inode, 8);
    read_kernel(p, FIELD(exe_generation), INODE, off->inode_generation, 4);
    read_kernel(p, FIELD(exe_ctime_sec), INODE, off->inode_ctime_sec, 8);
    read_kernel(p, FIELD(exe_ctime_nsec), INODE, off->inode_ctime_nsec, 4);
    read_kernel(p, SB, INODE, off->inode_sb, 8);
    read_kernel(p, FIELD(exe_dev), SB, off->sb_dev, 4);
    read_kernel(p, FIELD(exe_fs_magic), SB, off->sb_magic, 4);
    read_kernel(p, FIELD(exe_ino), INODE, off->inode_ino, 8);
    EMIT(p, STX_W(R10, R0, FIELD(exe_read)));
    read_kernel(p, MNT, FILE_, off->file_mnt, 8);
    read_kernel(p, FIELD(exe_mnt_id), MNT, off->vfsmount_mnt_id, 4);
    EMIT(p, STX_W(R10, R0, FIELD(mnt_read)));
    path_fingerprint(p, off);
  }
  if (off->cred_known) {
    if (!cached) read_parent(p, off);
    read_kernel(p, CRED, TASK, off->task_real_cred, 8);
    read_kernel(p, FIELD(euid), CRED, off->cred_euid, 4);
    EMIT(p, STX_W(R10, R0, FIELD(cred_read)));
  }
  if (!cached) {
    map_update(p, map_fd);
    return;
  }
  cache_program(p, cache, hook, map_fd, off);
}

/* Loads one program; returns its fd or -errno (the verifier's log is kept in verifier_log). */
static int load_program(int map_fd, size_t hook, const struct bpf_task_offsets *off, const struct bpf_cache *cache,
                        int direct) {
  static program p;
  p.n = 0;
  if (HOOKS[hook].release) {
    /* A socket whose last connect was a cache hit (VCACHE_MARK; a miss clears it) has no record: the
     * hit deleted the earlier one and stored none. Its close looks nothing up (the lookup of a missing
     * key still reads a cold bucket). A record made after the hit anyway (a bind refused on the
     * connected socket, or the bit set by another way than the connect program) stays until the LRU
     * evicts it: its cookie is never another socket's, so no other connection is named by it. */
    size_t decided = 0;
    if (cache != NULL) {
      EMIT(&p, LDX_W(R2, R1, (int16_t)offsetof(struct bpf_sock, mark)));
      decided = jump(&p, JSET_IMM(R2, (int32_t)VCACHE_MARK));
    }
    cookie_key(&p);
    delete_record(&p, map_fd);
    if (cache != NULL) land(&p, decided);
    EMIT(&p, MOV64_IMM(R0, 1), EXIT());
  } else {
    record_program(&p, map_fd, hook, off, cache, direct);
  }
  if (p.n > BPF_PROGRAM_MAX) return -E2BIG;
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = HOOKS[hook].type;
  attr.expected_attach_type = HOOKS[hook].attach;
  attr.insns = (uint64_t)(uintptr_t)p.insn;
  attr.insn_cnt = (uint32_t)p.n;
  attr.license = (uint64_t)(uintptr_t)license;
  verifier_log[0] = 0;
  int fd = (int)bpf_prog_load(&attr);
  if (fd >= 0) return fd;
  int refused = errno;
  /* Refused: once more with the verifier's log, for the error (a log of every instruction
   * would not fit in the buffer of a program that loads: the kernel refuses with ENOSPC). */
  attr.log_buf = (uint64_t)(uintptr_t)verifier_log;
  attr.log_size = sizeof verifier_log;
  attr.log_level = 1;
  fd = (int)bpf_prog_load(&attr);
  if (fd >= 0) return fd;
  int err = errno;
  bpf_log_one_line(verifier_log);
  /* A log longer than the buffer fails the second load with ENOSPC whatever the verifier found:
   * the first refusal's errno is then the reason (and the log holds only its start). */
  return -(err == ENOSPC ? refused : err);
}

static void handle_free(struct bpf_attr_handle *h) {
  for (size_t i = 0; i < HOOK_COUNT; i++) {
    if (h->link_fds[i] >= 0) close(h->link_fds[i]);
    if (h->prog_fds[i] >= 0) close(h->prog_fds[i]);
  }
  if (h->guard_retransmit >= 0) close(h->guard_retransmit);
  if (h->guard_retransmit_prog >= 0) close(h->guard_retransmit_prog);
  if (h->guard_setsockopt >= 0) close(h->guard_setsockopt);
  if (h->cgroup_fd >= 0) close(h->cgroup_fd);
  if (h->map_fd >= 0) close(h->map_fd);
  bpf_cache_free(&h->cache);
  free(h);
}

static napi_value fail(napi_env env, struct bpf_attr_handle *h, const char *what, int err) {
  char message[600];
  snprintf(message, sizeof message, "%.180s%s%.400s", what, verifier_log[0] ? "; verifier: " : "", verifier_log);
  handle_free(h);
  return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", message, err);
}

static void finalize(napi_env env, void *data, void *hint) {
  handle_free(data);
}

/*
 * bpfAttributionOpen(cgroupPath, maxEntries, cacheEntries) -> handle: creates the map, loads and
 * attaches. With cacheEntries > 0 the connect programs also consult a verdict cache of that size;
 * where the kernel refuses that part, they record without it (bpfCacheStats says why).
 */
napi_value bpf_attribution_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char path[4096];
  size_t len;
  uint32_t max_entries, cache_entries = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok ||
      len == 0 || len >= sizeof path - 1 || napi_get_value_uint32(env, argv[1], &max_entries) != napi_ok ||
      max_entries == 0) {
    napi_throw_type_error(env, NULL, "bpfAttributionOpen(cgroupPath, maxEntries, cacheEntries)");
    return NULL;
  }
  if (argc >= 3 && napi_get_value_uint32(env, argv[2], &cache_entries) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfAttributionOpen: cacheEntries must be a number");
    return NULL;
  }
  bool probe_reads = false; /* tests: the programs as on a kernel that refuses the direct loads */
  if (argc >= 4 && napi_get_value_bool(env, argv[3], &probe_reads) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfAttributionOpen: probeReads must be a boolean");
    return NULL;
  }
  struct bpf_attr_handle *h = calloc(1, sizeof *h);
  if (h == NULL) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "out of memory", ENOMEM);
  h->map_fd = h->cgroup_fd = h->guard_setsockopt = h->guard_retransmit = h->guard_retransmit_prog = -1;
  h->cache.map_fd = h->cache.state_fd = h->cache.ring_fd = -1;
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
  h->direct = !probe_reads && offsets.known && offsets.exe_known && offsets.cred_known && direct_fits(&offsets);
  if (cache_entries > 0) {
    int err = bpf_cache_create(&h->cache, cache_entries);
    if (err < 0) snprintf(h->cache.refused, sizeof h->cache.refused, "cannot create its maps: %s", strerror(-err));
    /* The bit the cache's hits set is accepted by the ruleset: no setsockopt may set it (CAP_NET_RAW
     * can set a mark), so without the guard there is no cache. Attached before the connect programs. */
    if (err == 0 && (err = bpf_guard_attach(h->cgroup_fd, &h->guard_setsockopt, &h->guard_retransmit,
                                             &h->guard_retransmit_prog)) < 0) {
      snprintf(h->cache.refused, sizeof h->cache.refused, "cannot attach its mark guards (setsockopt, retransmit): %s", strerror(-err));
      bpf_cache_free(&h->cache);
    }
  }
  for (size_t i = 0; i < HOOK_COUNT; i++) {
    const struct bpf_cache *cache = h->cache.map_fd >= 0 ? &h->cache : NULL;
    int fd = load_program(h->map_fd, i, &offsets, cache, h->direct);
    if (fd < 0 && h->direct) {
      /* A kernel whose verifier refuses the direct loads (or bpf_get_current_task_btf here): probe reads. */
      h->direct = 0;
      fd = load_program(h->map_fd, i, &offsets, cache, 0);
    }
    if (fd < 0 && cache != NULL) {
      /* The verifier refused the cache's part: record without it (the engine queues every connection). */
      snprintf(h->cache.refused, sizeof h->cache.refused, "the verifier refused it (%s)%s%.160s", strerror(-fd),
               verifier_log[0] ? ": " : "", verifier_log);
      bpf_cache_free(&h->cache);
      fd = load_program(h->map_fd, i, &offsets, NULL, 0);
    }
    if (fd < 0 && (offsets.exe_known || offsets.cred_known)) {
      /* A kernel whose verifier refuses these reads: record without the executable and the uid. */
      offsets.exe_known = offsets.cred_known = 0;
      fd = load_program(h->map_fd, i, &offsets, NULL, 0);
    }
    if (fd < 0 && offsets.known) {
      /* A kernel whose verifier refuses the probe reads here: record without the command line. */
      offsets.known = 0;
      fd = load_program(h->map_fd, i, &offsets, NULL, 0);
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

struct bpf_cache *bpf_attr_cache(napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) return NULL;
  return &((struct bpf_attr_handle *)data)->cache;
}

void bpf_attr_guard(napi_env env, napi_value handle, const char *cgroup, int *link_fd, int *prog_fd) {
  void *data = NULL;
  *link_fd = *prog_fd = -1;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) return;
  const struct bpf_attr_handle *h = data;
  if (h->guard_retransmit < 0 || h->guard_retransmit_prog < 0 || h->cgroup_fd < 0) return;
  /* The guard's link is on the handle's cgroup: a program swapped onto it runs there, so only for
   * that very cgroup (the same directory, not the same text). */
  struct stat mine, theirs;
  if (fstat(h->cgroup_fd, &mine) != 0 || stat(cgroup, &theirs) != 0 || mine.st_dev != theirs.st_dev ||
      mine.st_ino != theirs.st_ino)
    return;
  *link_fd = h->guard_retransmit;
  *prog_fd = h->guard_retransmit_prog;
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

/* bpfAttributionDirect(handle) -> whether the programs read the executable's identity by direct loads. */
napi_value bpf_attribution_direct(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  struct bpf_attr_handle *h = handle_of(env, info, argv, &argc);
  if (h == NULL || h->map_fd < 0) {
    napi_throw_type_error(env, NULL, "bpfAttributionDirect(open handle)");
    return NULL;
  }
  napi_get_boolean(env, h->direct != 0, &result);
  return result;
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
  if (h->guard_retransmit >= 0) close(h->guard_retransmit);
  if (h->guard_retransmit_prog >= 0) close(h->guard_retransmit_prog);
  if (h->guard_setsockopt >= 0) close(h->guard_setsockopt);
  h->guard_retransmit = h->guard_retransmit_prog = h->guard_setsockopt = -1;
  if (h->cgroup_fd >= 0) close(h->cgroup_fd);
  if (h->map_fd >= 0) close(h->map_fd);
  h->cgroup_fd = h->map_fd = -1;
  bpf_cache_free(&h->cache);
  return NULL;
}
