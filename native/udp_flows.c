/*
 * UDP flows die with their socket. Conntrack keeps a UDP flow for 30-180 s after the socket that
 * made it is gone, and any later socket on the same local port rides that flow as "established",
 * never queued, never judged. This binding subscribes to sock_diag's destroy multicast groups
 * (SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_UDP_DESTROY) and, for every UDP socket the kernel
 * destroys, deletes the conntrack entries of its local port over ctnetlink (IPCTNL_MSG_CT_DELETE):
 * exactly one tuple each way for a connected socket, else every UDP entry of that local address and
 * port (one dump). All in C on the event loop, no JS per socket; JS only hears of failures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

typedef struct {
  nl_reader reader;
  int ct_fd; /* ctnetlink requests (blocking, acknowledged) */
  uint32_t seq;
  uint64_t sockets;    /* UDP socket destructions seen */
  uint64_t deleted;    /* conntrack entries deleted */
  uint64_t dumps;      /* sockets that needed a table dump (not connected) */
  uint64_t failures;   /* ctnetlink requests the kernel refused (other than "no such entry") */
  int refs;
} udp_flows;

/* One local endpoint whose flows must go. Addresses in network order (16 bytes, v4 in the first 4). */
typedef struct {
  int family; /* AF_INET / AF_INET6 */
  uint8_t local[16];
  uint8_t remote[16];
  uint16_t lport; /* network order */
  uint16_t rport;
} endpoint;

static void release(void *owner) {
  udp_flows *u = owner;
  if (--u->refs == 0) {
    if (u->ct_fd >= 0) close(u->ct_fd);
    free(u);
  }
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_flows *u = data;
  if (!u->reader.closing) {
    u->refs++;
    nl_reader_close(&u->reader);
  }
  release(u);
}

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

/* Sends one delete request for the tuple (src:sport -> dst:dport); ENOENT (already gone) is not a failure. */
static void delete_tuple(udp_flows *u, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst,
                         uint16_t dport) {
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE, 0, ++u->seq, 0);
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = (uint8_t)family;
  struct nlattr *tuple = nest_start(h, CTA_TUPLE_ORIG);
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
  nest_end(h, tuple);
  int err = nl_request_ack(u->ct_fd, h, 1000, NULL, NULL);
  if (err == 0)
    u->deleted++;
  else if (err != -ENOENT)
    u->failures++;
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

typedef struct {
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
} tuple;

/* ctnetlink's dump filter flags (kernel-internal names, stable since Linux 5.8). */
#define FILTER_PROTO_NUM (1u << 3)
#define FILTER_PROTO_SRC_PORT (1u << 4)
#define FILTER_PROTO_DST_PORT (1u << 5)

typedef struct {
  tuple *items;
  size_t count, cap;
} tuples;

/*
 * Dumps the family's UDP entries and appends those that start or end at the endpoint. With `side`
 * 0 or 1 the kernel filters by the original source or destination port (CTA_FILTER, Linux >= 5.8),
 * so only matches are copied; -1 dumps everything. The match below is exact either way, so a kernel
 * that ignores the filter costs time, not correctness. Returns 0, or -errno when the dump failed.
 */
static int dump_matching(udp_flows *u, const endpoint *e, int side, tuples *out) {
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP,
                                  ++u->seq, 0);
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = (uint8_t)e->family;
  if (side >= 0) {
    struct nlattr *t = nest_start(h, CTA_TUPLE_ORIG);
    struct nlattr *proto = nest_start(h, CTA_TUPLE_PROTO);
    uint8_t num = IPPROTO_UDP;
    nl_put(h, CTA_PROTO_NUM, &num, 1);
    nl_put(h, side == 0 ? CTA_PROTO_SRC_PORT : CTA_PROTO_DST_PORT, &e->lport, 2);
    nest_end(h, proto);
    nest_end(h, t);
    struct nlattr *filter = nest_start(h, CTA_FILTER);
    uint32_t orig = FILTER_PROTO_NUM | (side == 0 ? FILTER_PROTO_SRC_PORT : FILTER_PROTO_DST_PORT), reply = 0;
    nl_put(h, CTA_FILTER_ORIG_FLAGS, &orig, 4);
    nl_put(h, CTA_FILTER_REPLY_FLAGS, &reply, 4);
    nest_end(h, filter);
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(u->ct_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  size_t alen = e->family == AF_INET ? 4 : 16;
  int any = is_any(e), result = 0;
  static char buffer[NL_RECV_SIZE] __attribute__((aligned(8)));
  for (int done = 0; !done;) {
    ssize_t n = recv(u->ct_fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (struct nlmsghdr *r = (struct nlmsghdr *)buffer; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
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
      if (!read_tuple(a[CTA_TUPLE_ORIG], e->family, t.src, t.dst, &t.sport, &t.dport)) continue;
      int from = t.sport == e->lport && (any || memcmp(t.src, e->local, alen) == 0);
      int to = t.dport == e->lport && (any || memcmp(t.dst, e->local, alen) == 0);
      if (!from && !to) continue;
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

/* Deletes every UDP entry that starts or ends at the endpoint (an unconnected socket: peers unknown). */
static void delete_by_port(udp_flows *u, const endpoint *e) {
  u->dumps++;
  tuples found = {0};
  int err = dump_matching(u, e, 0, &found);
  if (err == 0) err = dump_matching(u, e, 1, &found);
  if (err == -EINVAL || err == -EOPNOTSUPP) { /* a kernel without dump filters: one full dump */
    found.count = 0;
    err = dump_matching(u, e, -1, &found);
  }
  if (err != 0) u->failures++;
  for (size_t i = 0; i < found.count; i++)
    delete_tuple(u, e->family, found.items[i].src, found.items[i].sport, found.items[i].dst,
                 found.items[i].dport);
  free(found.items);
}

static void on_destroy(nl_reader *r, const struct nlmsghdr *h) {
  udp_flows *u = r->owner;
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) return;
  const struct inet_diag_msg *d = NLMSG_DATA(h);
  if (d->idiag_family != AF_INET && d->idiag_family != AF_INET6) return;
  if (d->id.idiag_sport == 0) return; /* never bound: no flow can carry its port */
  u->sockets++;
  endpoint e = {.family = d->idiag_family, .lport = d->id.idiag_sport, .rport = d->id.idiag_dport};
  size_t alen = e.family == AF_INET ? 4 : 16;
  memcpy(e.local, d->id.idiag_src, alen);
  memcpy(e.remote, d->id.idiag_dst, alen);
  uint64_t failures = u->failures;
  if (e.rport != 0 && !is_any(&e)) {
    delete_tuple(u, e.family, e.local, e.lport, e.remote, e.rport);
    delete_tuple(u, e.family, e.remote, e.rport, e.local, e.lport);
  } else {
    delete_by_port(u, &e);
  }
  if (u->failures != failures) {
    napi_value event;
    napi_create_object(r->env, &event);
    js_set_uint(r->env, event, "port", ntohs(e.lport));
    js_set_uint(r->env, event, "failures", (uint32_t)(u->failures - failures));
    nl_reader_emit(r, event);
  }
}

static napi_value open_error(napi_env env, udp_flows *u, const char *what, int err) {
  if (u->reader.fd >= 0) close(u->reader.fd);
  if (u->ct_fd >= 0) close(u->ct_fd);
  free(u);
  return nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", what, err);
}

/* udpFlowsOpen(onFailure) -> handle: starts reaping the flows of destroyed UDP sockets in this namespace. */
napi_value udp_flows_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "udpFlowsOpen(onFailure)");
    return NULL;
  }
  udp_flows *u = calloc(1, sizeof *u);
  u->ct_fd = -1;
  u->refs = 1;
  u->reader.owner = u;
  u->reader.free_owner = release;
  u->reader.handle = on_destroy;
  u->reader.fd = nl_open(NETLINK_SOCK_DIAG, 1);
  if (u->reader.fd < 0) return open_error(env, u, "cannot open a sock_diag socket", -u->reader.fd);
  for (int group = SKNLGRP_INET_UDP_DESTROY; group <= SKNLGRP_INET6_UDP_DESTROY; group += 2) {
    if (setsockopt(u->reader.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
      return open_error(env, u, "cannot subscribe to UDP socket destruction (needs CAP_NET_ADMIN)", errno);
  }
  nl_grow_receive_buffer(u->reader.fd, 4 << 20);
  u->ct_fd = nl_open(NETLINK_NETFILTER, 0);
  if (u->ct_fd < 0) {
    int err = -u->ct_fd;
    u->ct_fd = -1;
    return open_error(env, u, "cannot open a ctnetlink socket", err);
  }
  int err = nl_reader_start(&u->reader, env, argv[0], "warden:udp-flows");
  if (err != 0) return open_error(env, u, "cannot poll the sock_diag socket", -err);
  napi_value handle;
  u->refs++;
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
  js_set_double(env, out, "sockets", (double)u->sockets);
  js_set_double(env, out, "deleted", (double)u->deleted);
  js_set_double(env, out, "dumps", (double)u->dumps);
  js_set_double(env, out, "failures", (double)u->failures);
  js_set_double(env, out, "enobufs", (double)u->reader.enobufs);
  return out;
}

napi_value udp_flows_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  udp_flows *u = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (u != NULL && !u->reader.closing) nl_reader_close(&u->reader);
  return NULL;
}
