/*
 * counterDump(table, sets): Warden's rule counters in table `inet <table>` as one string of
 * "name packets\n" lines (one JS value: 10,000 N-API array elements cost more than the dump):
 * the named counter objects whose names start with "c_" (rules written inline), by one
 * NFT_MSG_GETOBJ dump filtered by table and type, and the per-element counters of the given sets
 * (`counter` in their declaration), each element named by its comment, by one NFT_MSG_GETSETELEM
 * dump per set. No nft process and no cache of the table (nft 1.0.6 fetches the whole table to
 * list one counter: ~0.4 s at 10,000 rules). Blocking, with a 2 s limit per dump; the socket is
 * opened per call in the caller's network namespace. A missing table or set reads as empty.
 */
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

#define DUMP_TIMEOUT_MS 2000
/* NFPROTO_INET of linux/netfilter.h (which clashes with netinet/in.h through linux/in.h). */
#define FAMILY_INET 1

static uint64_t be64(const void *p) {
  const unsigned char *b = p;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | b[i];
  return v;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
  char *text;
  size_t used, cap;
} out_text;

static int emit(out_text *o, const char *name, size_t name_len, double packets) {
  if (o->used + name_len + 32 > o->cap) {
    char *bigger = realloc(o->text, o->cap * 2 + name_len + 32);
    if (bigger == NULL) return ENOMEM;
    o->text = bigger;
    o->cap = o->cap * 2 + name_len + 32;
  }
  memcpy(o->text + o->used, name, name_len);
  o->used += name_len;
  o->used += (size_t)snprintf(o->text + o->used, o->cap - o->used, " %.0f\n", packets);
  return 0;
}

/* Iterates the attributes inside a nested attribute (or a payload of `len` bytes at `p`). */
#define FOR_ATTRS(a, p, len)                                                                        \
  for (const struct nlattr *a = (const struct nlattr *)(p);                                       \
       (const char *)a + NLA_HDRLEN <= (const char *)(p) + (len) && a->nla_len >= NLA_HDRLEN &&      \
       (const char *)a + a->nla_len <= (const char *)(p) + (len);                                 \
       a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len)))

/* Packets of a counter expression's NFTA_COUNTER_* attributes; -1 when absent. */
static double counter_packets(const struct nlattr *data) {
  FOR_ATTRS(c, nl_attr_data(data), nl_attr_len(data)) {
    if ((c->nla_type & NLA_TYPE_MASK) == NFTA_COUNTER_PACKETS && nl_attr_len(c) >= 8)
      return (double)be64(nl_attr_data(c));
  }
  return -1;
}

/* Packets of an expression (NFTA_EXPR_NAME, NFTA_EXPR_DATA) when it is a counter; -1 otherwise. */
static double expr_packets(const struct nlattr *expr) {
  const struct nlattr *name = NULL, *data = NULL;
  FOR_ATTRS(e, nl_attr_data(expr), nl_attr_len(expr)) {
    int t = e->nla_type & NLA_TYPE_MASK;
    if (t == NFTA_EXPR_NAME) name = e;
    if (t == NFTA_EXPR_DATA) data = e;
  }
  if (name == NULL || data == NULL || strncmp(nl_attr_data(name), "counter", nl_attr_len(name)) != 0) return -1;
  return counter_packets(data);
}

/* One set element: its comment (userdata TLV type 0) and its counter; emitted when it has both. */
static int set_element(out_text *o, const struct nlattr *elem) {
  const char *comment = NULL;
  size_t comment_len = 0;
  double packets = -1;
  FOR_ATTRS(a, nl_attr_data(elem), nl_attr_len(elem)) {
    int t = a->nla_type & NLA_TYPE_MASK;
    if (t == NFTA_SET_ELEM_USERDATA) {
      const unsigned char *u = nl_attr_data(a);
      size_t len = nl_attr_len(a);
      for (size_t i = 0; i + 2 <= len && i + 2 + u[i + 1] <= len; i += 2 + u[i + 1]) {
        if (u[i] == 0 && u[i + 1] > 0) {
          comment = (const char *)u + i + 2;
          comment_len = strnlen(comment, u[i + 1]);
        }
      }
    } else if (t == NFTA_SET_ELEM_EXPR) {
      packets = expr_packets(a);
    } else if (t == NFTA_SET_ELEM_EXPRESSIONS) {
      FOR_ATTRS(e, nl_attr_data(a), nl_attr_len(a)) {
        double p = expr_packets(e);
        if (p >= 0) packets = p;
      }
    }
  }
  if (comment == NULL || packets < 0 || comment_len < 2 || comment[0] != 'c' || comment[1] != '_') return 0;
  return emit(o, comment, comment_len, packets);
}

/* A counter object message: its name and packets. */
static int counter_object(out_text *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_OBJ_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_OBJ_MAX);
  if (a[NFTA_OBJ_NAME] == NULL || a[NFTA_OBJ_DATA] == NULL) return 0;
  const char *name = nl_attr_data(a[NFTA_OBJ_NAME]);
  size_t name_len = strnlen(name, nl_attr_len(a[NFTA_OBJ_NAME]));
  if (name_len < 2 || name[0] != 'c' || name[1] != '_') return 0;
  double packets = counter_packets(a[NFTA_OBJ_DATA]);
  return packets < 0 ? 0 : emit(o, name, name_len, packets);
}

/* A set element list message: each of its elements. */
static int set_elements(out_text *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_SET_ELEM_LIST_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_SET_ELEM_LIST_MAX);
  if (a[NFTA_SET_ELEM_LIST_ELEMENTS] == NULL) return 0;
  FOR_ATTRS(e, nl_attr_data(a[NFTA_SET_ELEM_LIST_ELEMENTS]), nl_attr_len(a[NFTA_SET_ELEM_LIST_ELEMENTS])) {
    int err = set_element(o, e);
    if (err != 0) return err;
  }
  return 0;
}

/* Sends a dump request and hands each answer to `each`; 0, or an errno (ENOENT: nothing to dump is 0). */
static int dump(int fd, struct nlmsghdr *h, out_text *o, int (*each)(out_text *, const struct nlmsghdr *),
                char *buf) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return errno;
  int64_t deadline = now_ms() + DUMP_TIMEOUT_MS;
  for (;;) {
    ssize_t len = recv(fd, buf, NL_RECV_SIZE, 0);
    if (len < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
      int64_t left = deadline - now_ms();
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (left <= 0 || poll(&p, 1, (int)left) == 0) return ETIMEDOUT;
      continue;
    }
    for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_type == NLMSG_DONE) return 0;
      if (r->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(r);
        return e->error == 0 || e->error == -ENOENT ? 0 : -e->error;
      }
      int err = each(o, r);
      if (err != 0) return err;
    }
  }
}

napi_value counter_dump(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char table[64];
  size_t table_len = 0;
  uint32_t sets = 0;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], table, sizeof table, &table_len) != napi_ok || table_len == 0 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &sets) != napi_ok) {
    napi_throw_type_error(env, NULL, "counterDump(table, sets): a table name and an array of set names");
    return NULL;
  }
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "cannot open a netfilter socket", -fd);
  nl_grow_receive_buffer(fd, 4 << 20);
  out_text o = {.text = malloc(1 << 16), .used = 0, .cap = 1 << 16};
  char *buf = malloc(NL_RECV_SIZE);
  int err = (o.text == NULL || buf == NULL) ? ENOMEM : 0;
  uint32_t seq = 0;
  if (err == 0) {
    nl_message m;
    struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETOBJ, NLM_F_REQUEST | NLM_F_DUMP, ++seq, 0);
    ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
    nl_put(h, NFTA_OBJ_TABLE, table, table_len + 1);
    nl_put_be32(h, NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    err = dump(fd, h, &o, counter_object, buf);
  }
  for (uint32_t i = 0; err == 0 && i < sets; i++) {
    napi_value v;
    char set[64];
    size_t set_len = 0;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, set, sizeof set, &set_len) != napi_ok || set_len == 0)
      continue;
    nl_message m;
    struct nlmsghdr *h =
        nfnl_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, ++seq, 0);
    ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
    nl_put(h, NFTA_SET_ELEM_LIST_TABLE, table, table_len + 1);
    nl_put(h, NFTA_SET_ELEM_LIST_SET, set, set_len + 1);
    err = dump(fd, h, &o, set_elements, buf);
  }
  free(buf);
  close(fd);
  if (err != 0) {
    free(o.text);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump failed", err);
  }
  napi_value out;
  napi_create_string_utf8(env, o.text, o.used, &out);
  free(o.text);
  return out;
}
