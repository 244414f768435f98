/*
 * Connect-time slots (bpf_tuple.c, docs/attribution.md "Connect-time slots"): a sock_ops program
 * publishes each TCP connect's four-tuple, socket and record in a memory-mapped BPF array the engine
 * reads without a system call.
 */
#ifndef WARDEN_BPF_TUPLE_H
#define WARDEN_BPF_TUPLE_H
#include <stdint.h>

#include "bpf_attr.h"

/* The connection's key as the program writes it and the engine computes it: do not reorder. */
struct bpf_tuple_key {
  uint64_t netns;    /* bpf_get_netns_cookie: tuples are per network namespace */
  uint8_t local[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
  uint8_t remote[16];
  uint32_t local_port;  /* host byte order (bpf_sock_ops.local_port) */
  uint32_t remote_port; /* as bpf_sock_ops.remote_port gives it: the port in network byte order in the upper half */
};

/* One slot of the array (memory-mapped read-only by the engine). */
struct bpf_tuple_slot {
  uint64_t seq;    /* even: stable; odd: a program is writing it (claimed by compare-and-exchange) */
  uint64_t poison; /* > 0: a program found the slot claimed and could not write its connection */
  uint64_t cookie; /* the socket's cookie; 0: empty (never written, or cleared when its socket closed) */
  struct bpf_tuple_key key;
  uint64_t inode;    /* the socket's inode number */
  uint32_t uid;      /* the socket's owner (sk_uid, what sock_diag and NFQUEUE's uid give) */
  int32_t sock_read; /* 0 when inode and uid were read */
  uint64_t recorded; /* 1 when record holds the attribution record of the cookie */
  struct bpf_attr_record record;
};

/*
 * What bpfTupleLookup copies into the caller's bytes (src/kernel/native.ts decodes it and keeps the
 * strings it made by their bytes, so a lookup makes no JS value in C): do not reorder.
 */
struct bpf_tuple_answer {
  uint32_t cookie_lo, cookie_hi;
  uint32_t comm_len;
  uint32_t args_len; /* 0 when the record does not hold the whole command line */
  char comm[16];     /* zero after comm_len */
  uint32_t exe_known; /* 1 when the executable's fields below were all read */
  int32_t exe_mnt_id;
  uint32_t exe_dev;
  uint32_t exe_generation;
  uint64_t exe_ino;
  int64_t exe_ctime_sec;
  uint32_t exe_ctime_nsec; /* without I_CTIME_QUERIED */
  uint32_t zero;
  uint64_t path_hash;
  char args[BPF_ATTR_ARGS]; /* zero after args_len */
};
_Static_assert(sizeof(struct bpf_tuple_answer) == 80 + BPF_ATTR_ARGS, "the layout native.ts reads");

/* Slots in the array: a power of two (8,192 slots of 480 bytes: 3.75 MiB). */
#define BPF_TUPLE_SLOTS 8192u
_Static_assert((BPF_TUPLE_SLOTS & (BPF_TUPLE_SLOTS - 1)) == 0, "a power of two: slot = hash & (SLOTS - 1)");

/* The hash of a key (slot = hash & (BPF_TUPLE_SLOTS - 1)), as the program computes it. */
static inline uint32_t bpf_tuple_hash(const struct bpf_tuple_key *k, uint64_t seed) {
  const uint64_t prime = 0x9E3779B97F4A7C15ull;
  uint64_t words[6];
  __builtin_memcpy(words, k, sizeof words);
  uint64_t h = seed;
  for (int i = 0; i < 6; i++) h = (h ^ words[i]) * prime;
  return (uint32_t)((h ^ (h >> 32)) & (BPF_TUPLE_SLOTS - 1));
}
_Static_assert(sizeof(struct bpf_tuple_key) == 48, "the key is six 8-byte words");
#endif
