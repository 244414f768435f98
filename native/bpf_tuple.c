/*
 * Connect-time slots (docs/attribution.md, "Connect-time slots"): a BPF_PROG_TYPE_SOCK_OPS program,
 * attached to the same cgroup as the attribution programs (bpf_attr.c), runs when a TCP socket of
 * the cgroup connects (BPF_SOCK_OPS_TCP_CONNECT_CB: the source port is chosen, the SYN not yet
 * built) and publishes the connection in a BPF array the engine maps read-only (BPF_F_MMAPABLE):
 * its four-tuple and network namespace, the socket's cookie, inode and owner, and a copy of the
 * record the connect program just made (the LRU by cookie). The slot is a hash of the tuple with a
 * seed chosen at load. The engine then attributes the connection's SYN from memory: no sock_diag
 * round trip, no map lookup system call.
 * Exactness (an unprivileged process must not get its connection attributed to another program):
 * - only the program writes the array (the engine maps it read-only; nobody else has its fd);
 * - each slot is a seqlock with one writer at a time: a program claims it by compare-and-exchange
 *   of an even sequence number, writes, and releases it (exchange, a full barrier) with the next
 *   even number; a program that finds it claimed cannot wait: it adds to the slot's `poison`, and
 *   the engine ignores a poisoned slot until a program claims it again (and writes its own tuple);
 * - the engine answers only from a slot read between two equal even sequence numbers, not
 *   poisoned, whose network namespace, addresses and ports are the packet's, with every read done;
 *   anything else is a miss, and today's sock_diag lookup answers;
 * - the program asks for the socket's state changes (BPF_SOCK_OPS_STATE_CB_FLAG, added to the
 *   flags others set) and empties the slot of a socket that closes (TCP_CLOSE, which a socket goes
 *   through before TIME_WAIT, after a failed connect and on a disconnect): a later socket with the
 *   same tuple that the program does not see (outside the cgroup) never finds the old record.
 * - a connect that finds its own key in the slot, for a socket that has not closed, poisons it: two
 *   live sockets share the tuple (TCP allows it for sockets bound to different devices), and the
 *   packet's tuple cannot tell them apart.
 * So a clean slot with the packet's tuple is the one live socket in the namespace that made a
 * connection with it: the socket that sent the packet.
 * With the verdict cache, the program starts with the cache's sock_ops guard (bpf_guard.c) and
 * replaces the guard's program on the guard's link (BPF_LINK_UPDATE) instead of a link of its own:
 * one sock_ops program per callback. bpf_tuple_free puts the guard alone back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_insn.h"
#include "bpf_tuple.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif



#define CTX(f) ((int16_t)offsetof(struct bpf_sock_ops, f))
#define SLOT(f) ((int16_t)offsetof(struct bpf_tuple_slot, f))
/* Stack: the key at r10-48, the slot's index, the cookie, kernel pointers read on the way. */
enum { KEY = -48, IDX = -56, COOKIE = -64, SKP = -72, P1 = -80, P2 = -88, P3 = -96 };

/* *(r10 + dst) or *(r9 + dst) = `size` bytes at *(u64 *)(r10 + ptr_slot) + off; r7 |= the result. */
static void read_kernel(program *p, int base, int dst, int ptr_slot, int32_t off, int size) {
  EMIT(p, LDX_DW(R3, R10, ptr_slot), ADD64_IMM(R3, off), MOV64_REG(R1, base), ADD64_IMM(R1, dst),
       MOV64_IMM(R2, size), CALL(BPF_FUNC_probe_read_kernel), OR64_REG(R7, R0));
}

/*
 * The connection's key (struct bpf_tuple_key) on the stack from the context, its slot in r9, and the
 * slot claimed: r8 holds the (even) sequence number it had. A slot already claimed is poisoned.
 */
static void key_and_claim(program *p, int array_fd, uint64_t seed) {
  EMIT(p, LDX_W(R2, R6, CTX(family)));
  size_t v6 = jump(p, JNE_IMM(R2, AF_INET));
  EMIT(p, ST_DW(R10, KEY + 8, 0), ST_W(R10, KEY + 16, (int32_t)0xffff0000u /* 00 00 ff ff */),
       LDX_W(R1, R6, CTX(local_ip4)), STX_W(R10, R1, KEY + 20), ST_DW(R10, KEY + 24, 0),
       ST_W(R10, KEY + 32, (int32_t)0xffff0000u), LDX_W(R1, R6, CTX(remote_ip4)), STX_W(R10, R1, KEY + 36));
  size_t ports = jump(p, JA());
  land(p, v6);
  for (int i = 0; i < 4; i++)
    EMIT(p, LDX_W(R1, R6, CTX(local_ip6) + 4 * i), STX_W(R10, R1, KEY + 8 + 4 * i),
         LDX_W(R1, R6, CTX(remote_ip6) + 4 * i), STX_W(R10, R1, KEY + 24 + 4 * i));
  land(p, ports);
  EMIT(p, LDX_W(R1, R6, CTX(local_port)), STX_W(R10, R1, KEY + 40), LDX_W(R1, R6, CTX(remote_port)),
       STX_W(R10, R1, KEY + 44), MOV64_REG(R1, R6), CALL(BPF_FUNC_get_netns_cookie), STX_DW(R10, R0, KEY));
  /* The hash (bpf_tuple_hash): h = (h ^ word) * prime over the six words, folded, masked. */
  EMIT(p, LD_IMM64(R7, seed), LD_IMM64(R8, 0x9E3779B97F4A7C15ull));
  for (int i = 0; i < 6; i++) EMIT(p, LDX_DW(R1, R10, KEY + 8 * i), XOR64_REG(R7, R1), MUL64_REG(R7, R8));
  EMIT(p, MOV64_REG(R1, R7), RSH64_IMM(R1, 32), XOR64_REG(R7, R1), AND64_IMM(R7, BPF_TUPLE_SLOTS - 1),
       STX_W(R10, R7, IDX), LD_MAP_FD(R1, array_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, IDX),
       CALL(BPF_FUNC_map_lookup_elem));
  to_exit(p, JEQ_IMM(R0, 0));
  EMIT(p, MOV64_REG(R9, R0), LDX_DW(R8, R9, SLOT(seq)));
  size_t busy = jump(p, JSET_IMM(R8, 1));
  EMIT(p, MOV64_REG(R0, R8), MOV64_REG(R2, R8), ADD64_IMM(R2, 1), CMPXCHG_DW(R9, R2, SLOT(seq)));
  size_t lost = jump(p, JNE_REG(R0, R8));
  size_t claimed = jump(p, JA());
  land(p, busy);
  land(p, lost);
  EMIT(p, MOV64_IMM(R1, 1), ATOMIC_ADD_DW(R9, R1, SLOT(poison)));
  to_exit(p, JA());
  land(p, claimed);
}

/* Releases the slot claimed: the next even sequence number, by exchange (a full barrier). */
static void release(program *p) {
  EMIT(p, MOV64_REG(R2, R8), ADD64_IMM(R2, 2), XCHG_DW(R9, R2, SLOT(seq)));
}

static void build(program *p, int array_fd, int record_fd, uint64_t seed, const struct bpf_task_offsets *off,
                  int guard) {
  p->n = p->exit_count = 0;
  EMIT(p, MOV64_REG(R6, R1));
  /* With the verdict cache's sock_ops guard first (bpf_guard.c): one program, one call per callback. */
  if (guard) bpf_guard_emit(p);
  EMIT(p, LDX_W(R2, R6, CTX(op)));
  size_t state = jump(p, JEQ_IMM(R2, BPF_SOCK_OPS_STATE_CB));
  to_exit(p, JNE_IMM(R2, BPF_SOCK_OPS_TCP_CONNECT_CB));
  /* A connection the verdict cache decided (its connect program set Warden's bit on the socket) is
   * not queued: no slot, no state changes to follow. */
  EMIT(p, LDX_DW(R1, R6, CTX(sk)));
  size_t no_sk = jump(p, JEQ_IMM(R1, 0));
  EMIT(p, LDX_W(R2, R1, (int16_t)offsetof(struct bpf_sock, mark)));
  to_exit(p, JSET_IMM(R2, (int32_t)VCACHE_MARK));
  land(p, no_sk);
  /* A connect: ask for its state changes (the flags other programs set are kept). Refused, the slot
   * would never be emptied at close: no slot is written, sock_diag answers. */
  EMIT(p, LDX_W(R2, R6, CTX(bpf_sock_ops_cb_flags)), OR64_IMM(R2, BPF_SOCK_OPS_STATE_CB_FLAG), MOV64_REG(R1, R6),
       CALL(BPF_FUNC_sock_ops_cb_flags_set));
  to_exit(p, JNE_IMM(R0, 0));
  key_and_claim(p, array_fd, seed);
  /* The slot already holds this key for a socket that has not closed (it would have emptied it):
   * two live sockets share the tuple (bound to different devices, which TCP allows). Neither can be
   * told from the other by the packet's tuple: the slot is poisoned, and sock_diag answers. A slot
   * emptied with this key keeps its poison: the socket that closed may have shared the tuple with
   * one still live, which a new connect with the tuple cannot be told from either. Only another
   * tuple clears it. */
  size_t other_key[6];
  for (int i = 0; i < 6; i++) {
    EMIT(p, LDX_DW(R1, R9, SLOT(key) + 8 * i), LDX_DW(R2, R10, KEY + 8 * i));
    other_key[i] = jump(p, JNE_REG(R1, R2));
  }
  EMIT(p, LDX_DW(R1, R9, SLOT(cookie)));
  size_t same_emptied = jump(p, JEQ_IMM(R1, 0));
  EMIT(p, ST_DW(R9, SLOT(poison), 1));
  release(p);
  to_exit(p, JA());
  for (int i = 0; i < 6; i++) land(p, other_key[i]);
  EMIT(p, ST_DW(R9, SLOT(poison), 0));
  land(p, same_emptied);
  EMIT(p, MOV64_REG(R1, R6), CALL(BPF_FUNC_get_socket_cookie),
       STX_DW(R9, R0, SLOT(cookie)), STX_DW(R10, R0, COOKIE));
  for (int i = 0; i < 6; i++) EMIT(p, LDX_DW(R1, R10, KEY + 8 * i), STX_DW(R9, R1, SLOT(key) + 8 * i));
  /* The socket's owner and inode: sk->sk_uid, sk->sk_socket->file->f_inode->i_ino. */
  EMIT(p, ST_DW(R9, SLOT(inode), 0), ST_W(R9, SLOT(uid), 0), ST_W(R9, SLOT(sock_read), -1),
       LDX_DW(R1, R6, CTX(sk)));
  size_t no_sock = jump(p, JEQ_IMM(R1, 0));
  EMIT(p, CALL(BPF_FUNC_skc_to_tcp_sock));
  size_t no_tcp = jump(p, JEQ_IMM(R0, 0));
  EMIT(p, STX_DW(R10, R0, SKP), MOV64_IMM(R7, 0));
  read_kernel(p, R9, SLOT(uid), SKP, off->sock_uid, 4);
  read_kernel(p, R10, P1, SKP, off->sock_socket, 8);
  read_kernel(p, R10, P2, P1, off->socket_file, 8);
  read_kernel(p, R10, P3, P2, off->sock_file_inode, 8);
  read_kernel(p, R9, SLOT(inode), P3, off->sock_inode_ino, 8);
  EMIT(p, STX_W(R9, R7, SLOT(sock_read)));
  land(p, no_sock);
  land(p, no_tcp);
  /* The record the connect program made for this cookie, copied word by word. */
  EMIT(p, ST_DW(R9, SLOT(recorded), 0), LD_MAP_FD(R1, record_fd), MOV64_REG(R2, R10), ADD64_IMM(R2, COOKIE),
       CALL(BPF_FUNC_map_lookup_elem));
  size_t no_record = jump(p, JEQ_IMM(R0, 0));
  for (int i = 0; i < (int)(sizeof(struct bpf_attr_record) / 8); i++)
    EMIT(p, LDX_DW(R1, R0, 8 * i), STX_DW(R9, R1, SLOT(record) + 8 * i));
  EMIT(p, ST_DW(R9, SLOT(recorded), 1));
  land(p, no_record);
  release(p);
  to_exit(p, JA());

  /* A state change: a socket that closes empties its slot (if the slot is still its own). */
  land(p, state);
  EMIT(p, LDX_W(R2, R6, CTX(args) + 4));
  to_exit(p, JNE_IMM(R2, BPF_TCP_CLOSE));
  key_and_claim(p, array_fd, seed);
  EMIT(p, MOV64_REG(R1, R6), CALL(BPF_FUNC_get_socket_cookie), LDX_DW(R1, R9, SLOT(cookie)));
  size_t other = jump(p, JNE_REG(R1, R0));
  EMIT(p, ST_DW(R9, SLOT(cookie), 0), ST_DW(R9, SLOT(recorded), 0));
  land(p, other);
  release(p);
  for (size_t i = 0; i < p->exit_count; i++) land(p, p->exits[i]);
  EMIT(p, MOV64_IMM(R0, 1), EXIT());
}

struct bpf_tuple {
  int array_fd, prog_fd, link_fd, cgroup_fd;
  /* With the guard included: the guard's link (the program swapped on it) and its program alone, to
   * give back at close (duplicates: they outlive the attribution handle's). -1: a link of its own. */
  int guard_link, guard_prog;
  const struct bpf_tuple_slot *slots; /* mapped read-only */
  size_t mapped;
  uint64_t seed, netns;
  /* Lookups answered, and missed by reason. */
  uint64_t hits, empty, other, busy, poisoned, unread;
};

static char tuple_log[8192];

/* Puts `prog` on the link in place of `old` (atomically: the link's place among the cgroup's programs is kept); 0 or -errno. */
static int swap_program(int link, int prog, int old) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.link_update.link_fd = (uint32_t)link;
  attr.link_update.new_prog_fd = (uint32_t)prog;
  attr.link_update.flags = BPF_F_REPLACE;
  attr.link_update.old_prog_fd = (uint32_t)old;
  return sys_bpf(BPF_LINK_UPDATE, &attr) == 0 ? 0 : -errno;
}

void bpf_tuple_free(struct bpf_tuple *t) {
  if (t->slots != NULL && t->slots != MAP_FAILED) munmap((void *)t->slots, t->mapped);
  t->slots = NULL;
  if (t->guard_link >= 0 && t->guard_prog >= 0 && t->prog_fd >= 0) swap_program(t->guard_link, t->guard_prog, t->prog_fd);
  if (t->guard_link >= 0) close(t->guard_link);
  if (t->guard_prog >= 0) close(t->guard_prog);
  t->guard_link = t->guard_prog = -1;
  if (t->link_fd >= 0) close(t->link_fd);
  if (t->prog_fd >= 0) close(t->prog_fd);
  if (t->array_fd >= 0) close(t->array_fd);
  if (t->cgroup_fd >= 0) close(t->cgroup_fd);
  t->link_fd = t->prog_fd = t->array_fd = t->cgroup_fd = -1;
}

/*
 * Creates the array, maps it, loads the program (reading records from `record_fd`, the attribution
 * LRU) and attaches it to the cgroup. 0, or -errno with `why` saying which step failed.
 */
static int load(const program *p) {
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCK_OPS;
  attr.expected_attach_type = BPF_CGROUP_SOCK_OPS;
  attr.insns = (uint64_t)(uintptr_t)p->insn;
  attr.insn_cnt = (uint32_t)p->n;
  attr.license = (uint64_t)(uintptr_t)license;
  int fd = (int)bpf_prog_load(&attr);
  if (fd >= 0) return fd;
  attr.log_buf = (uint64_t)(uintptr_t)tuple_log;
  attr.log_size = sizeof tuple_log;
  attr.log_level = 1;
  fd = (int)bpf_prog_load(&attr);
  if (fd < 0) bpf_log_one_line(tuple_log);
  return fd;
}

/*
 * With the verdict cache's sock_ops guard (its link and program, -1 without): the program includes
 * the guard and takes the guard's place on its link (BPF_LINK_UPDATE, atomic: no connect is ever
 * without the guard); bpf_tuple_free gives the link its guard alone back. Where that fails, the
 * program is the slots' alone, on a link of its own, as without a guard.
 */
static int open_with(struct bpf_tuple *t, program *p, const struct bpf_task_offsets *off, int record_fd,
                     int guard_link, int guard_prog) {
  if (guard_link < 0 || guard_prog < 0) return 0;
  build(p, t->array_fd, record_fd, t->seed, off, 1);
  if (p->n > BPF_PROGRAM_MAX) return 0;
  t->prog_fd = load(p);
  t->guard_link = fcntl(guard_link, F_DUPFD_CLOEXEC, 0);
  t->guard_prog = fcntl(guard_prog, F_DUPFD_CLOEXEC, 0);
  if (t->prog_fd >= 0 && t->guard_link >= 0 && t->guard_prog >= 0 &&
      swap_program(t->guard_link, t->prog_fd, t->guard_prog) == 0)
    return 1;
  if (t->prog_fd >= 0) close(t->prog_fd);
  if (t->guard_link >= 0) close(t->guard_link);
  if (t->guard_prog >= 0) close(t->guard_prog);
  t->prog_fd = t->guard_link = t->guard_prog = -1;
  return 0;
}

int bpf_tuple_open_guarded(struct bpf_tuple *t, const char *cgroup, int record_fd, int guard_link, int guard_prog,
                           char *why, size_t why_len);

int bpf_tuple_open(struct bpf_tuple *t, const char *cgroup, int record_fd, char *why, size_t why_len) {
  return bpf_tuple_open_guarded(t, cgroup, record_fd, -1, -1, why, why_len);
}

int bpf_tuple_open_guarded(struct bpf_tuple *t, const char *cgroup, int record_fd, int guard_link, int guard_prog,
                           char *why, size_t why_len) {
  memset(t, 0, sizeof *t);
  t->array_fd = t->prog_fd = t->link_fd = t->cgroup_fd = t->guard_link = t->guard_prog = -1;
  tuple_log[0] = 0;
  int err;
#define FAIL(...)                                                                                           \
  do {                                                                                                     \
    err = -errno;                                                                                          \
    snprintf(why, why_len, __VA_ARGS__);                                                                   \
    goto failed;                                                                                           \
  } while (0)
  struct bpf_task_offsets off;
  if (bpf_btf_offsets(&off) != 0 || !off.sock_known) {
    errno = ENOTSUP;
    FAIL("the kernel's type information gives no offsets of the socket's owner and inode");
  }
  /* The engine's own network namespace: a slot from another namespace is not this host's connection. */
  int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  socklen_t len = sizeof t->netns;
  if (probe < 0) FAIL("cannot open a socket");
  int got = getsockopt(probe, SOL_SOCKET, SO_NETNS_COOKIE, &t->netns, &len);
  close(probe);
  if (got != 0) FAIL("no SO_NETNS_COOKIE");
  if (getrandom(&t->seed, sizeof t->seed, 0) != (ssize_t)sizeof t->seed) FAIL("no random seed");
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = sizeof(uint32_t);
  attr.value_size = sizeof(struct bpf_tuple_slot);
  attr.max_entries = BPF_TUPLE_SLOTS;
  attr.map_flags = BPF_F_MMAPABLE;
  memcpy(attr.map_name, "warden_tuples", sizeof "warden_tuples");
  t->array_fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
  if (t->array_fd < 0) FAIL("cannot create the slots' array");
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  t->mapped = ((size_t)BPF_TUPLE_SLOTS * sizeof(struct bpf_tuple_slot) + page - 1) / page * page;
  t->slots = mmap(NULL, t->mapped, PROT_READ, MAP_SHARED, t->array_fd, 0);
  if (t->slots == MAP_FAILED) FAIL("cannot map the slots' array");
  static program p;
  if (open_with(t, &p, &off, record_fd, guard_link, guard_prog)) return 0;
  build(&p, t->array_fd, record_fd, t->seed, &off, 0);
  if (p.n > BPF_PROGRAM_MAX) {
    errno = E2BIG;
    FAIL("the program is too long");
  }
  t->prog_fd = load(&p);
  if (t->prog_fd < 0) FAIL("the verifier refused the sock_ops program: %.300s", tuple_log);
  t->cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->cgroup_fd < 0) FAIL("cannot open cgroup %.200s", cgroup);
  memset(&attr, 0, sizeof attr);
  attr.link_create.prog_fd = (uint32_t)t->prog_fd;
  attr.link_create.target_fd = (uint32_t)t->cgroup_fd;
  attr.link_create.attach_type = BPF_CGROUP_SOCK_OPS;
  t->link_fd = (int)sys_bpf(BPF_LINK_CREATE, &attr);
  if (t->link_fd < 0) FAIL("cannot attach the sock_ops program to cgroup %.200s", cgroup);
  return 0;
#undef FAIL
failed:
  bpf_tuple_free(t);
  return err < 0 ? err : -EINVAL;
}

/* The key of a connection as this host sees it (addresses in network byte order, 4 or 16 bytes). */
void bpf_tuple_key_of(struct bpf_tuple_key *k, uint64_t netns, int family, const void *local, uint16_t local_port,
                      const void *remote, uint16_t remote_port) {
  memset(k, 0, sizeof *k);
  k->netns = netns;
  if (family == 4) {
    k->local[10] = k->local[11] = k->remote[10] = k->remote[11] = 0xff;
    memcpy(k->local + 12, local, 4);
    memcpy(k->remote + 12, remote, 4);
  } else {
    memcpy(k->local, local, 16);
    memcpy(k->remote, remote, 16);
  }
  k->local_port = local_port;
  uint32_t port_be = htons(remote_port);
  /* bpf_sock_ops.remote_port: the 16-bit field as it is in memory, shifted to the upper half. */
  k->remote_port = port_be << 16;
}

/*
 * Reads the slot of a connection: 1 and *out (the slot as it was, consistent) when it holds that
 * connection's socket, else 0 (counted by reason).
 */
int bpf_tuple_read(struct bpf_tuple *t, int family, const void *local, uint16_t local_port, const void *remote,
                   uint16_t remote_port, struct bpf_tuple_slot *out) {
  struct bpf_tuple_key key;
  bpf_tuple_key_of(&key, t->netns, family, local, local_port, remote, remote_port);
  const struct bpf_tuple_slot *slot = &t->slots[bpf_tuple_hash(&key, t->seed)];
  uint64_t before = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
  if (before & 1) return t->busy++, 0;
  memcpy(out, (const void *)slot, sizeof *out);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  uint64_t poison = __atomic_load_n(&slot->poison, __ATOMIC_RELAXED);
  uint64_t after = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
  if (after != before) return t->busy++, 0;
  if (poison != 0) return t->poisoned++, 0;
  if (out->cookie == 0) return t->empty++, 0;
  if (memcmp(&out->key, &key, sizeof key) != 0) return t->other++, 0;
  if (out->recorded != 1 || out->sock_read != 0) return t->unread++, 0;
  return t->hits++, 1;
}

#ifndef BPF_TUPLE_PROBE
#include <math.h>
#include <node_api.h>

#include "addon.h"
#include "nl.h"

static void finalize(napi_env env, void *data, void *hint) {
  bpf_tuple_free(data);
  free(data);
}

static struct bpf_tuple *tuple_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) return NULL;
  struct bpf_tuple *t = data;
  return t->slots == NULL ? NULL : t;
}

/* bpfTupleOpen(cgroupPath, attributionHandle) -> handle (throws WARDEN_E_KERNEL_BPF with the step that failed). */
napi_value bpf_tuple_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[4096];
  size_t len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int record_fd = argc >= 2 ? bpf_attr_map_fd(env, argv[1]) : -1;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len == 0 ||
      len >= sizeof path - 1 || record_fd < 0) {
    napi_throw_type_error(env, NULL, "bpfTupleOpen(cgroupPath, open attribution handle)");
    return NULL;
  }
  int guard_link = -1, guard_prog = -1;
  bpf_attr_guard(env, argv[1], path, &guard_link, &guard_prog);
  struct bpf_tuple *t = malloc(sizeof *t);
  if (t == NULL) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "out of memory", ENOMEM);
  char why[512];
  int err = bpf_tuple_open_guarded(t, path, record_fd, guard_link, guard_prog, why, sizeof why);
  if (err < 0) {
    free(t);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", why, -err);
  }
  napi_value handle;
  if (napi_create_external(env, t, finalize, NULL, &handle) != napi_ok) {
    bpf_tuple_free(t);
    free(t);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot create the handle", ENOMEM);
  }
  return handle;
}

#define TCP_SYN_SENT_STATE 2

/* The slot as socketLookup's numbers (bpf_attr_record_numbers, as sock_diag.c's) and the answer's bytes. */
static void answer(const struct bpf_tuple_slot *s, double *n, struct bpf_tuple_answer *a) {
  const struct bpf_attr_record *r = &s->record;
  for (int i = 0; i < N_COUNT; i++) n[i] = NAN;
  n[N_INODE] = (double)s->inode;
  n[N_UID] = s->uid;
  n[N_STATE] = TCP_SYN_SENT_STATE;
  bpf_attr_record_numbers(n, r);
  memset(a, 0, sizeof *a);
  a->cookie_lo = (uint32_t)s->cookie;
  a->cookie_hi = (uint32_t)(s->cookie >> 32);
  a->comm_len = (uint32_t)strnlen(r->comm, sizeof r->comm);
  memcpy(a->comm, r->comm, a->comm_len);
  if (r->args_read == 0 && r->args_len > 0 && r->args_len <= BPF_ATTR_ARGS) {
    a->args_len = r->args_len;
    memcpy(a->args, r->args, r->args_len);
  }
  if (!bpf_attr_exe_known(r)) return;
  a->exe_known = 1;
  a->exe_mnt_id = r->exe_mnt_id;
  a->exe_dev = r->exe_dev;
  a->exe_generation = r->exe_generation;
  a->exe_ino = r->exe_ino;
  a->exe_ctime_sec = r->exe_ctime_sec;
  a->exe_ctime_nsec = r->exe_ctime_nsec & 0x3fffffffu;
  a->path_hash = r->path_hash;
}

/*
 * bpfTupleLookup(handle, family 4|6, src, srcPort, dst, dstPort, numbers, bytes) -> true when the
 * slot holds the connection (src the local end): the numbers as socketLookup's with a record, the
 * strings' bytes in `bytes` (struct bpf_tuple_answer); false when not (then sock_diag is asked).
 * The state given is SYN_SENT, the socket's at its connect. It makes no JS value: a cold call
 * costs its few argument reads and the copy.
 */
napi_value bpf_tuple_lookup(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], result;
  uint32_t family, sport, dport;
  char src_text[64], dst_text[64];
  size_t len, bytes_length = 0;
  uint8_t src[16], dst[16];
  napi_typedarray_type type = napi_int8_array, bytes_type = napi_int8_array;
  size_t numbers_length = 0;
  void *numbers = NULL, *bytes = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct bpf_tuple *t = argc >= 8 ? tuple_of(env, argv[0]) : NULL;
  if (t == NULL || napi_get_value_uint32(env, argv[1], &family) != napi_ok || (family != 4 && family != 6) ||
      napi_get_value_string_utf8(env, argv[2], src_text, sizeof src_text, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &sport) != napi_ok || sport > 65535 ||
      napi_get_value_string_utf8(env, argv[4], dst_text, sizeof dst_text, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &dport) != napi_ok || dport > 65535 ||
      inet_pton(family == 4 ? AF_INET : AF_INET6, src_text, src) != 1 ||
      inet_pton(family == 4 ? AF_INET : AF_INET6, dst_text, dst) != 1 ||
      napi_get_typedarray_info(env, argv[6], &type, &numbers_length, &numbers, NULL, NULL) != napi_ok ||
      type != napi_float64_array || numbers_length < N_COUNT ||
      napi_get_typedarray_info(env, argv[7], &bytes_type, &bytes_length, &bytes, NULL, NULL) != napi_ok ||
      bytes_type != napi_uint8_array || bytes_length < sizeof(struct bpf_tuple_answer)) {
    napi_throw_type_error(env, NULL,
                          "bpfTupleLookup(open handle, family, src, srcPort, dst, dstPort, Float64Array(14), Uint8Array(336))");
    return NULL;
  }
  struct bpf_tuple_slot slot;
  int hit = bpf_tuple_read(t, (int)family, src, (uint16_t)sport, dst, (uint16_t)dport, &slot);
  if (hit) answer(&slot, numbers, bytes);
  napi_get_boolean(env, hit, &result);
  return result;
}

/* bpfTupleStats(handle) -> [hits, empty, other, busy, poisoned, unread] (lookups since opened). */
napi_value bpf_tuple_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct bpf_tuple *t = argc >= 1 ? tuple_of(env, argv[0]) : NULL;
  if (t == NULL) {
    napi_throw_type_error(env, NULL, "bpfTupleStats(open handle)");
    return NULL;
  }
  const uint64_t values[] = {t->hits, t->empty, t->other, t->busy, t->poisoned, t->unread};
  napi_create_array_with_length(env, 6, &result);
  for (uint32_t i = 0; i < 6; i++) {
    napi_create_double(env, (double)values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/* bpfTupleClose(handle): detaches the program, unmaps and frees the array. */
napi_value bpf_tuple_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "bpfTupleClose(handle)");
    return NULL;
  }
  bpf_tuple_free(data);
  return NULL;
}
#endif
