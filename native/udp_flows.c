/*
 * UDP flows die with their socket. Conntrack keeps a UDP flow for 30-180 s after the socket that
 * made it is gone, and any later socket on the same local port rides that flow as "established",
 * never queued, never judged. This binding subscribes to sock_diag's destroy multicast groups
 * (SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_UDP_DESTROY) and, for every bound UDP socket the kernel
 * destroys, deletes the conntrack entries of its local port over ctnetlink (IPCTNL_MSG_CT_DELETE):
 * exactly one tuple each way for a connected socket, else every UDP entry of that local address and
 * port (one dump per batch of notices). The work runs on a thread of its own, never on the event loop: a
 * dump walks the whole conntrack hash (milliseconds on a big table), and a local program that
 * closes sockets in a loop must not stall the verdicts. Notices that arrive together are handled
 * together.
 */
#define _GNU_SOURCE /* pipe2 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* ctnetlink's dump filter flags (kernel-internal names, stable since Linux 5.8). */
#define FILTER_PROTO_NUM (1u << 3)
/* Notices handled in one go (their unconnected sockets share one dump per family). */
#define BATCH 256

typedef struct {
  int diag_fd;  /* sock_diag destroy notices */
  int ct_fd;    /* ctnetlink requests (blocking, 2 s receive limit) */
  int wake[2];  /* a byte in wake[1] stops the thread */
  pthread_t thread;
  int closed;   /* JS side: stop() ran */
  uint32_t seq; /* thread only */
  char *buffer; /* thread only: NL_RECV_SIZE bytes */
  /* Written by the thread, read by JS: atomics. */
  uint64_t sockets;  /* bound UDP socket destructions seen */
  uint64_t deleted;  /* conntrack entries deleted */
  uint64_t dumps;    /* conntrack dumps (for unconnected sockets) */
  uint64_t failures; /* ctnetlink requests the kernel refused (other than "no such entry") */
  uint64_t enobufs;  /* notices lost: our socket buffer overflowed */
} udp_flows;

#define COUNT(u, field, n) __atomic_add_fetch(&(u)->field, (uint64_t)(n), __ATOMIC_RELAXED)
#define READ(u, field) __atomic_load_n(&(u)->field, __ATOMIC_RELAXED)

/* One local endpoint whose flows must go. Addresses in network order (16 bytes, v4 in the first 4). */
typedef struct {
  int family; /* AF_INET / AF_INET6 */
  uint8_t local[16];
  uint8_t remote[16];
  uint16_t lport; /* network order */
  uint16_t rport;
} endpoint;

typedef struct {
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
} tuple;

typedef struct {
  int family;
  tuple *items;
  size_t count, cap;
} tuples;

static struct nlattr *nest_start(struct nlmsghdr *h, uint16_t type) {
  struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->nla_type = type | NLA_F_NESTED;
  a->nla_len = NLA_HDRLEN;
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_HDRLEN;
  return a;
}

static void nest_end(struct nlmsghdr *h, struct nlattr *a) {
  a->nla_len = (uint16_t)((char *)h + h->nlmsg_len - (char *)a);
}

static int is_any(const endpoint *e) {
  static const uint8_t zero[16];
  return memcmp(e->local, zero, e->family == AF_INET ? 4 : 16) == 0;
}

/* Sends a request with NLM_F_ACK on the ctnetlink socket; returns the kernel's answer (0 or -errno). */
static int request_ack(udp_flows *u, struct nlmsghdr *h) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  if (sendto(u->ct_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  for (;;) {
    ssize_t n = recv(u->ct_fd, u->buffer, NL_RECV_SIZE, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno; /* EAGAIN: the receive limit passed */
    }
    for (struct nlmsghdr *m = (struct nlmsghdr *)u->buffer; NLMSG_OK(m, (size_t)n); m = NLMSG_NEXT(m, n))
      if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == h->nlmsg_seq)
        return ((const struct nlmsgerr *)NLMSG_DATA(m))->error;
  }
}

/* Deletes the entry whose original tuple is (src:sport -> dst:dport); ENOENT (already gone) is no failure. */
static void delete_tuple(udp_flows *u, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
                         uint16_t dport) {
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE, 0, ++u->seq, 0);
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = (uint8_t)family;
  struct nlattr *t = nest_start(h, CTA_TUPLE_ORIG);
  struct nlattr *ip = nest_start(h, CTA_TUPLE_IP);
  size_t alen = family == AF_INET ? 4 : 16;
  nl_put(h, family == AF_INET ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, src, alen);
  nl_put(h, family == AF_INET ? CTA_IP_V4_DST : CTA_IP_V6_DST, dst, alen);
  nest_end(h, ip);
  struct nlattr *proto = nest_start(h, CTA_TUPLE_PROTO);
  uint8_t num = IPPROTO_UDP;
  nl_put(h, CTA_PROTO_NUM, &num, 1);
  nl_put(h, CTA_PROTO_SRC_PORT, &sport, 2);
  nl_put(h, CTA_PROTO_DST_PORT, &dport, 2);
  nest_end(h, proto);
  nest_end(h, t);
  int err = request_ack(u, h);
  if (err == 0)
    COUNT(u, deleted, 1);
  else if (err != -ENOENT)
    COUNT(u, failures, 1);
}

/* The addresses and ports of a CTA_TUPLE_ORIG attribute; 0 when it is not a UDP tuple. */
static int read_tuple(const struct nlattr *tuple, int family, uint8_t src[16], uint8_t dst[16], uint16_t *sport,
                      uint16_t *dport) {
  const char *p = nl_attr_data(tuple), *end = p + nl_attr_len(tuple);
  int udp = 0;
  size_t alen = family == AF_INET ? 4 : 16;
  while (p + NLA_HDRLEN <= end) {
    const struct nlattr *a = (const struct nlattr *)p;
    if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) break;
    const char *q = nl_attr_data(a), *qend = q + nl_attr_len(a);
    while (q + NLA_HDRLEN <= qend) {
      const struct nlattr *b = (const struct nlattr *)q;
      if (b->nla_len < NLA_HDRLEN || q + b->nla_len > qend) break;
      int outer = a->nla_type & NLA_TYPE_MASK, inner = b->nla_type & NLA_TYPE_MASK;
      size_t blen = nl_attr_len(b);
      if (outer == CTA_TUPLE_IP && blen == alen) {
        if (inner == CTA_IP_V4_SRC || inner == CTA_IP_V6_SRC) memcpy(src, nl_attr_data(b), alen);
        if (inner == CTA_IP_V4_DST || inner == CTA_IP_V6_DST) memcpy(dst, nl_attr_data(b), alen);
      } else if (outer == CTA_TUPLE_PROTO) {
        if (inner == CTA_PROTO_NUM && blen >= 1) udp = *(const uint8_t *)nl_attr_data(b) == IPPROTO_UDP;
        if (inner == CTA_PROTO_SRC_PORT && blen >= 2) memcpy(sport, nl_attr_data(b), 2);
        if (inner == CTA_PROTO_DST_PORT && blen >= 2) memcpy(dport, nl_attr_data(b), 2);
      }
      q += NLA_ALIGN(b->nla_len);
    }
    p += NLA_ALIGN(a->nla_len);
  }
  return udp;
}

/* True when the flow starts or ends at the endpoint's local address (any, for a wildcard bind) and port. */
static int matches(const endpoint *e, const tuple *t) {
  size_t alen = e->family == AF_INET ? 4 : 16;
  int any = is_any(e);
  int from = t->sport == e->lport && (any || memcmp(t->src, e->local, alen) == 0);
  int to = t->dport == e->lport && (any || memcmp(t->dst, e->local, alen) == 0);
  return from || to;
}

/*
 * Dumps the family's conntrack table and appends the UDP entries that match one of the endpoints
 * (all of one family). `filtered`: the kernel copies only UDP entries (CTA_FILTER, Linux >= 5.8).
 * The match here is exact either way: a kernel that ignores the filter costs time, not correctness.
 * One dump walks the whole hash table (about 10 ms for 262,144 buckets here), whatever it holds.
 * Returns 0, or -errno when the dump failed.
 */
static int dump_matching(udp_flows *u, const endpoint *es, size_t ne, int filtered, tuples *out) {
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP,
                                  ++u->seq, 0);
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = (uint8_t)es[0].family;
  if (filtered) {
    struct nlattr *t = nest_start(h, CTA_TUPLE_ORIG);
    struct nlattr *proto = nest_start(h, CTA_TUPLE_PROTO);
    uint8_t num = IPPROTO_UDP;
    nl_put(h, CTA_PROTO_NUM, &num, 1);
    nest_end(h, proto);
    nest_end(h, t);
    struct nlattr *filter = nest_start(h, CTA_FILTER);
    uint32_t orig = FILTER_PROTO_NUM, reply = 0;
    nl_put(h, CTA_FILTER_ORIG_FLAGS, &orig, 4);
    nl_put(h, CTA_FILTER_REPLY_FLAGS, &reply, 4);
    nest_end(h, filter);
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(u->ct_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  int result = 0;
  for (int done = 0; !done;) {
    ssize_t n = recv(u->ct_fd, u->buffer, NL_RECV_SIZE, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (struct nlmsghdr *r = (struct nlmsghdr *)u->buffer; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != u->seq) continue;
      if (r->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (r->nlmsg_type == NLMSG_ERROR) {
        result = ((const struct nlmsgerr *)NLMSG_DATA(r))->error;
        done = 1;
        break;
      }
      const struct nlattr *a[CTA_MAX + 1];
      nl_parse_attrs(r, sizeof(struct nfgenmsg), a, CTA_MAX);
      if (a[CTA_TUPLE_ORIG] == NULL) continue;
      tuple t = {0};
      if (!read_tuple(a[CTA_TUPLE_ORIG], es[0].family, t.src, t.dst, &t.sport, &t.dport)) continue;
      size_t i = 0;
      while (i < ne && !matches(&es[i], &t)) i++;
      if (i == ne) continue;
      if (out->count == out->cap) {
        size_t grown = out->cap == 0 ? 16 : out->cap * 2;
        tuple *more = realloc(out->items, grown * sizeof *more);
        if (more == NULL) continue;
        out->items = more;
        out->cap = grown;
      }
      out->items[out->count++] = t;
    }
  }
  return result;
}

/*
 * Deletes every UDP entry that starts or ends at one of the endpoints (unconnected sockets of one
 * family: their peers are unknown): one dump for all of them.
 */
static void delete_unconnected(udp_flows *u, const endpoint *es, size_t ne) {
  if (ne == 0) return;
  tuples found = {.family = es[0].family};
  COUNT(u, dumps, 1);
  int err = dump_matching(u, es, ne, 1, &found);
  if (err == -EINVAL || err == -EOPNOTSUPP) { /* a kernel without dump filters */
    found.count = 0;
    COUNT(u, dumps, 1);
    err = dump_matching(u, es, ne, 0, &found);
  }
  if (err != 0) COUNT(u, failures, 1);
  for (size_t i = 0; i < found.count; i++)
    delete_tuple(u, found.family, found.items[i].src, found.items[i].sport, found.items[i].dst,
                 found.items[i].dport);
  free(found.items);
}

/* Reads the destroy notices waiting (up to BATCH) and deletes their flows. */
static void handle_notices(udp_flows *u) {
  static __thread endpoint loose[2][BATCH]; /* unconnected sockets per family (0: v4, 1: v6) */
  size_t nloose[2] = {0, 0}, seen = 0;
  while (seen < BATCH) {
    ssize_t n = recv(u->diag_fd, u->buffer, NL_RECV_SIZE, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        COUNT(u, enobufs, 1);
        continue;
      }
      break; /* EAGAIN: all read */
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)u->buffer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        continue;
      const struct inet_diag_msg *d = NLMSG_DATA(h);
      if (d->idiag_family != AF_INET && d->idiag_family != AF_INET6) continue;
      if (d->id.idiag_sport == 0) continue; /* never bound: no flow can carry its port */
      COUNT(u, sockets, 1);
      seen++;
      endpoint e = {.family = d->idiag_family, .lport = d->id.idiag_sport, .rport = d->id.idiag_dport};
      size_t alen = e.family == AF_INET ? 4 : 16;
      memcpy(e.local, d->id.idiag_src, alen);
      memcpy(e.remote, d->id.idiag_dst, alen);
      if (e.rport != 0 && !is_any(&e)) {
        delete_tuple(u, e.family, e.local, e.lport, e.remote, e.rport);
        delete_tuple(u, e.family, e.remote, e.rport, e.local, e.lport);
      } else {
        int f = e.family == AF_INET6;
        if (nloose[f] < BATCH) loose[f][nloose[f]++] = e;
      }
    }
  }
  delete_unconnected(u, loose[0], nloose[0]);
  delete_unconnected(u, loose[1], nloose[1]);
}

static void *reaper(void *arg) {
  udp_flows *u = arg;
  for (;;) {
    struct pollfd p[2] = {{.fd = u->diag_fd, .events = POLLIN}, {.fd = u->wake[0], .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents != 0) break;
    if (p[0].revents != 0) handle_notices(u);
  }
  return NULL;
}

static void close_fds(udp_flows *u) {
  int *fds[] = {&u->diag_fd, &u->ct_fd, &u->wake[0], &u->wake[1]};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    if (*fds[i] >= 0) close(*fds[i]);
    *fds[i] = -1;
  }
}

/* Stops the thread (after the notices it is handling) and closes the sockets. Idempotent. */
static void stop(udp_flows *u) {
  if (u->closed) return;
  u->closed = 1;
  char byte = 1;
  while (write(u->wake[1], &byte, 1) < 0 && errno == EINTR) {
  }
  pthread_join(u->thread, NULL);
  close_fds(u);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_flows *u = data;
  stop(u);
  free(u->buffer);
  free(u);
}

static napi_value open_error(napi_env env, udp_flows *u, const char *what, int err) {
  close_fds(u);
  free(u->buffer);
  free(u);
  return nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", what, err);
}

/* udpFlowsOpen() -> handle: starts reaping the flows of destroyed UDP sockets in this namespace. */
napi_value udp_flows_open(napi_env env, napi_callback_info info) {
  (void)info;
  udp_flows *u = calloc(1, sizeof *u);
  if (u == NULL) return nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", "udp flows", ENOMEM);
  u->diag_fd = u->ct_fd = u->wake[0] = u->wake[1] = -1;
  u->buffer = malloc(NL_RECV_SIZE);
  if (u->buffer == NULL) return open_error(env, u, "udp flows", ENOMEM);
  u->diag_fd = nl_open(NETLINK_SOCK_DIAG, 0);
  if (u->diag_fd < 0) {
    int err = -u->diag_fd;
    u->diag_fd = -1;
    return open_error(env, u, "cannot open a sock_diag socket", err);
  }
  for (int group = SKNLGRP_INET_UDP_DESTROY; group <= SKNLGRP_INET6_UDP_DESTROY; group += 2) {
    if (setsockopt(u->diag_fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
      return open_error(env, u, "cannot subscribe to UDP socket destruction (needs CAP_NET_ADMIN)", errno);
  }
  nl_grow_receive_buffer(u->diag_fd, 4 << 20);
  u->ct_fd = nl_open(NETLINK_NETFILTER, 0);
  if (u->ct_fd < 0) {
    int err = -u->ct_fd;
    u->ct_fd = -1;
    return open_error(env, u, "cannot open a ctnetlink socket", err);
  }
  struct timeval limit = {.tv_sec = 2};
  setsockopt(u->ct_fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (pipe2(u->wake, O_CLOEXEC) < 0) return open_error(env, u, "cannot make a pipe", errno);
  int err = pthread_create(&u->thread, NULL, reaper, u);
  if (err != 0) return open_error(env, u, "cannot start the UDP flow thread", err);
  napi_value handle;
  napi_create_external(env, u, finalize, NULL, &handle);
  return handle;
}

static udp_flows *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a udp flows handle");
    return NULL;
  }
  return data;
}

napi_value udp_flows_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  udp_flows *u = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (u == NULL) return NULL;
  napi_create_object(env, &out);
  js_set_double(env, out, "sockets", (double)READ(u, sockets));
  js_set_double(env, out, "deleted", (double)READ(u, deleted));
  js_set_double(env, out, "dumps", (double)READ(u, dumps));
  js_set_double(env, out, "failures", (double)READ(u, failures));
  js_set_double(env, out, "enobufs", (double)READ(u, enobufs));
  return out;
}

napi_value udp_flows_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  udp_flows *u = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (u != NULL) stop(u);
  return NULL;
}
