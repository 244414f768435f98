/*
 * NFLOG binding: binds one log group (NFNL_SUBSYS_ULOG) and hands every logged packet (prefix,
 * metadata, the first copy-range bytes) to a JS callback. The ruleset logs kernel-decided blocks
 * with `log group G prefix "..."`; this turns them into log items.
 */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

typedef struct {
  nl_reader reader;
  uint16_t group;
  int refs;
} nflog;

static void release(void *owner) {
  nflog *l = owner;
  if (--l->refs == 0) free(l);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nflog *l = data;
  if (!l->reader.closing) {
    l->refs++;
    nl_reader_close(&l->reader);
  }
  release(l);
}

static void on_log(nl_reader *r, const struct nlmsghdr *h) {
  if (h->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return;
  const struct nlattr *a[NFULA_MAX + 1];
  nl_parse_attrs(h, sizeof(struct nfgenmsg), a, NFULA_MAX);
  if (a[NFULA_PACKET_HDR] == NULL || nl_attr_len(a[NFULA_PACKET_HDR]) < sizeof(struct nfulnl_msg_packet_hdr)) return;
  struct nfulnl_msg_packet_hdr ph;
  memcpy(&ph, nl_attr_data(a[NFULA_PACKET_HDR]), sizeof ph);
  napi_env env = r->env;
  napi_value p;
  napi_create_object(env, &p);
  const char *prefix = a[NFULA_PREFIX] ? nl_attr_data(a[NFULA_PREFIX]) : "";
  size_t prefix_len = a[NFULA_PREFIX] ? strnlen(prefix, nl_attr_len(a[NFULA_PREFIX])) : 0;
  js_set_string(env, p, "prefix", prefix, prefix_len);
  js_set_uint(env, p, "hwProtocol", ntohs(ph.hw_protocol));
  js_set_uint(env, p, "hook", ph.hook);
  js_set_uint(env, p, "mark", a[NFULA_MARK] ? nl_attr_be32(a[NFULA_MARK]) : 0);
  if (a[NFULA_UID]) js_set_uint(env, p, "uid", nl_attr_be32(a[NFULA_UID]));
  if (a[NFULA_GID]) js_set_uint(env, p, "gid", nl_attr_be32(a[NFULA_GID]));
  if (a[NFULA_IFINDEX_INDEV]) js_set_uint(env, p, "indev", nl_attr_be32(a[NFULA_IFINDEX_INDEV]));
  if (a[NFULA_IFINDEX_OUTDEV]) js_set_uint(env, p, "outdev", nl_attr_be32(a[NFULA_IFINDEX_OUTDEV]));
  if (a[NFULA_PAYLOAD])
    js_set_buffer(env, p, "payload", nl_attr_data(a[NFULA_PAYLOAD]), nl_attr_len(a[NFULA_PAYLOAD]));
  else
    js_set_buffer(env, p, "payload", "", 0);
  nl_reader_emit(r, p);
}

static napi_value fail(napi_env env, nflog *l, const char *what, int err) {
  nl_throw_errno(env, "WARDEN_E_KERNEL_LOG", what, err);
  close(l->reader.fd);
  free(l->reader.stash);
  free(l);
  return NULL;
}

/* logOpen(group, copyRange, callback) -> handle */
napi_value log_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t group, copy_range;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &group) != napi_ok || group > 65535 ||
      napi_get_value_uint32(env, argv[1], &copy_range) != napi_ok) {
    napi_throw_type_error(env, NULL, "logOpen(group, copyRange, callback)");
    return NULL;
  }
  nflog *l = calloc(1, sizeof *l);
  l->group = (uint16_t)group;
  l->refs = 1;
  l->reader.owner = l;
  l->reader.free_owner = release;
  l->reader.handle = on_log;
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) {
    free(l);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_LOG", "cannot open a netfilter netlink socket", -fd);
  }
  l->reader.fd = fd;
  nl_grow_receive_buffer(fd, 4 << 20);

  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG, 0, 1, l->group);
  struct nfulnl_msg_config_cmd cmd = {.command = NFULNL_CFG_CMD_BIND};
  nl_put(h, NFULA_CFG_CMD, &cmd, sizeof cmd);
  int err = nl_request_ack(fd, h, 2000, nl_reader_stash, &l->reader);
  if (err != 0) return fail(env, l, "binding the log group was refused", -err);

  h = nfnl_start(&m, NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG, 0, 2, l->group);
  struct nfulnl_msg_config_mode mode = {.copy_range = htonl(copy_range), .copy_mode = NFULNL_COPY_PACKET};
  nl_put(h, NFULA_CFG_MODE, &mode, sizeof mode);
  nl_put_be32(h, NFULA_CFG_QTHRESH, 1); /* deliver each packet at once */
  err = nl_request_ack(fd, h, 2000, nl_reader_stash, &l->reader);
  if (err != 0) return fail(env, l, "log copy mode refused", -err);

  err = nl_reader_start(&l->reader, env, argv[2], "warden:nflog");
  if (err != 0) return fail(env, l, "cannot poll the log socket", -err);
  napi_value handle;
  l->refs++;
  napi_create_external(env, l, finalize, NULL, &handle);
  return handle;
}

static nflog *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a log handle");
    return NULL;
  }
  return data;
}

napi_value log_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nflog *l = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (l == NULL) return NULL;
  napi_create_object(env, &out);
  js_set_double(env, out, "received", (double)l->reader.received);
  js_set_double(env, out, "enobufs", (double)l->reader.enobufs);
  js_set_double(env, out, "truncated", (double)l->reader.truncated);
  return out;
}

napi_value log_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nflog *l = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (l != NULL && !l->reader.closing) nl_reader_close(&l->reader); /* closing the socket unbinds */
  return NULL;
}
