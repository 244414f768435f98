/*
 * counterDump(table): the named nft counters of table `inet <table>` whose names start with "c_"
 * (Warden's rule counters, src/kernel/ruleset.ts), as one string of "name packets\n" lines (one
 * JS value: 10,000 N-API array elements cost more than the dump).
 * One NFT_MSG_GETOBJ dump filtered by table and type (the kernel sends only those objects): no
 * nft process, no cache of the table's rules and sets (nft 1.0.6 fetches all of them to list one
 * counter: ~0.4 s at 10,000 rules). Blocking, with a 2 s limit; the socket is opened per call
 * in the caller's network namespace. A missing table is an empty array.
 */
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <poll.h>
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

napi_value counter_dump(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char table[64];
  size_t table_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], table, sizeof table, &table_len) != napi_ok || table_len == 0) {
    napi_throw_type_error(env, NULL, "counterDump(table): table must be a name");
    return NULL;
  }
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "cannot open a netfilter socket", -fd);
  nl_grow_receive_buffer(fd, 4 << 20);
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETOBJ, NLM_F_REQUEST | NLM_F_DUMP, 1, 0);
  ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
  nl_put(h, NFTA_OBJ_TABLE, table, table_len + 1);
  nl_put_be32(h, NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    int err = errno;
    close(fd);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump request failed", err);
  }
  size_t cap = 1 << 16, used = 0;
  char *text = malloc(cap);
  char *buf = malloc(NL_RECV_SIZE);
  if (buf == NULL || text == NULL) {
    free(buf);
    free(text);
    close(fd);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump", ENOMEM);
  }
  int err = 0;
  int done = 0;
  int64_t deadline = now_ms() + DUMP_TIMEOUT_MS;
  while (!done) {
    ssize_t len = recv(fd, buf, NL_RECV_SIZE, 0);
    if (len < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        err = errno;
        break;
      }
      int64_t left = deadline - now_ms();
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (left <= 0 || poll(&p, 1, (int)left) == 0) {
        err = ETIMEDOUT;
        break;
      }
      continue;
    }
    for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (r->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(r);
        if (e->error != 0 && e->error != -ENOENT) err = -e->error;
        done = 1;
        break;
      }
      const struct nlattr *a[NFTA_OBJ_MAX + 1];
      nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_OBJ_MAX);
      if (a[NFTA_OBJ_NAME] == NULL || a[NFTA_OBJ_DATA] == NULL) continue;
      const char *name = nl_attr_data(a[NFTA_OBJ_NAME]);
      size_t name_len = strnlen(name, nl_attr_len(a[NFTA_OBJ_NAME]));
      if (name_len < 2 || name[0] != 'c' || name[1] != '_') continue;
      /* The nested counter attributes: walk them as a message body of their own. */
      double packets = -1;
      const char *p = nl_attr_data(a[NFTA_OBJ_DATA]);
      const char *end = p + nl_attr_len(a[NFTA_OBJ_DATA]);
      while (p + NLA_HDRLEN <= end) {
        const struct nlattr *c = (const struct nlattr *)p;
        if (c->nla_len < NLA_HDRLEN || p + c->nla_len > end) break;
        if ((c->nla_type & NLA_TYPE_MASK) == NFTA_COUNTER_PACKETS && nl_attr_len(c) >= 8)
          packets = (double)be64(nl_attr_data(c));
        p += NLA_ALIGN(c->nla_len);
      }
      if (packets < 0) continue;
      if (used + name_len + 32 > cap) {
        char *bigger = realloc(text, cap * 2);
        if (bigger == NULL) {
          err = ENOMEM;
          done = 1;
          break;
        }
        text = bigger;
        cap *= 2;
      }
      memcpy(text + used, name, name_len);
      used += name_len;
      used += (size_t)snprintf(text + used, cap - used, " %.0f\n", packets);
    }
  }
  free(buf);
  close(fd);
  if (err != 0) {
    free(text);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump failed", err);
  }
  napi_value out;
  napi_create_string_utf8(env, text, used, &out);
  free(text);
  return out;
}
