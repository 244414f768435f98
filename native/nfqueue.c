/*
 * NFQUEUE binding: binds one queue over a raw NETLINK_NETFILTER socket, hands each queued packet
 * (metadata + the first copy-range bytes) to a JS callback from the event loop, and sends verdicts
 * whenever JS decides (synchronously or later).
 *
 * Verdicts given while the queue's packets are being handed out (one read of the socket; each
 * packet's promises settle before the next is handed out) are collected and sent together, several
 * verdict messages in one datagram, once the oldest has waited VERDICT_WAIT_NS or the read ends
 * (the kernel handles each message and answers an error for one without dropping the rest). A
 * verdict given at any other time (an answer that needed I/O, an ask) is sent at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

/*
 * Packets handed to JS per wakeup at most: their verdicts go out when the read ends, so under a flood
 * a read must end (and the event loop get its turn) even though the socket never runs empty.
 */
#define READ_BUDGET 256

/* How long a verdict may wait for others to share its datagram (ns). */
#define VERDICT_WAIT_NS 50000

/* Verdicts sent in one datagram at most (a verdict message is 32 or 40 bytes). */
#define VERDICT_DATAGRAM 16384

typedef struct {
  nl_reader reader;
  uint16_t queue;
  uint32_t seq;
  uint64_t verdicts;
  uint64_t datagrams;
  uint64_t send_errors; /* datagrams the kernel did not take */
  uint64_t unsent;      /* verdicts in them: their packets wait until the queue is unbound (then dropped) */
  int refs;             /* the JS handle + the libuv handles */
  uint64_t oldest;      /* uv_hrtime() when the first waiting verdict was given */
  size_t pending_len;   /* bytes of verdict messages in pending */
  uint32_t pending_count;
  char pending[VERDICT_DATAGRAM] __attribute__((aligned(8)));
} nfq;

/* Sends the collected verdicts in one datagram; returns 0 or errno (then they are counted as unsent). */
static int send_pending(nfq *q) {
  if (q->pending_count == 0) return 0;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int err = 0;
  while (sendto(q->reader.fd, q->pending, q->pending_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    if (errno == EINTR) continue;
    err = errno;
    break;
  }
  if (err == 0) {
    q->verdicts += q->pending_count;
    q->datagrams++;
  } else {
    q->send_errors++;
    q->unsent += q->pending_count;
  }
  q->pending_len = 0;
  q->pending_count = 0;
  return err;
}

/* The end of one read of the queue socket: what JS decided meanwhile goes out together. */
static void on_drained(nl_reader *r) { send_pending(r->owner); }

/*
 * After each packet of a read (its promises settled): waiting verdicts go out once the oldest has
 * waited VERDICT_WAIT_NS, so cheap judgements share a datagram and an expensive one (attribution
 * reading /proc) does not hold back the verdicts decided before it.
 */
static void on_settled(nl_reader *r) {
  nfq *q = r->owner;
  if (q->pending_count > 0 && uv_hrtime() - q->oldest >= VERDICT_WAIT_NS) send_pending(q);
}

static void release(void *owner) {
  nfq *q = owner;
  if (--q->refs == 0) free(q);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nfq *q = data;
  if (!q->reader.closing) {
    send_pending(q);
    q->refs++; /* closed here: the libuv close callbacks release once more */
    nl_reader_close(&q->reader);
  }
  release(q);
}

static void on_packet(nl_reader *r, const struct nlmsghdr *h) {
  if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return;
  const struct nlattr *a[NFQA_MAX + 1];
  nl_parse_attrs(h, sizeof(struct nfgenmsg), a, NFQA_MAX);
  if (a[NFQA_PACKET_HDR] == NULL || nl_attr_len(a[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr)) return;
  struct nfqnl_msg_packet_hdr ph;
  memcpy(&ph, nl_attr_data(a[NFQA_PACKET_HDR]), sizeof ph);
  /* Positional arguments; the JS side (src/kernel/native.ts) makes the packet object of them. */
  napi_env env = r->env;
  napi_value argv[9], undefined;
  void *copy;
  napi_get_undefined(env, &undefined);
  napi_create_uint32(env, ntohl(ph.packet_id), &argv[0]);
  napi_create_uint32(env, ntohs(ph.hw_protocol), &argv[1]);
  napi_create_uint32(env, ph.hook, &argv[2]);
  napi_create_uint32(env, a[NFQA_MARK] ? nl_attr_be32(a[NFQA_MARK]) : 0, &argv[3]);
  const int optional[4] = {NFQA_UID, NFQA_GID, NFQA_IFINDEX_INDEV, NFQA_IFINDEX_OUTDEV};
  for (int i = 0; i < 4; i++) {
    if (a[optional[i]])
      napi_create_uint32(env, nl_attr_be32(a[optional[i]]), &argv[4 + i]);
    else
      argv[4 + i] = undefined;
  }
  if (a[NFQA_PAYLOAD])
    napi_create_buffer_copy(env, nl_attr_len(a[NFQA_PAYLOAD]), nl_attr_data(a[NFQA_PAYLOAD]), &copy, &argv[8]);
  else
    napi_create_buffer_copy(env, 0, "", &copy, &argv[8]);
  nl_reader_emit_args(r, 9, argv);
}

static napi_value config_error(napi_env env, nfq *q, const char *what, int err) {
  nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", what, err);
  close(q->reader.fd);
  free(q->reader.stash);
  free(q);
  return NULL;
}

/*
 * queueOpen(queueNumber, copyRange, maxLength, receiveBuffer, callback) -> handle
 * NFQA_CFG_F_FAIL_OPEN is never set: a full queue drops (a dropped SYN is sent again and then judged),
 * it never accepts a packet nobody decided. What happens without a listener is the rule's
 * --queue-bypass, chosen by the ruleset.
 */
napi_value queue_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint32_t number, copy_range, max_length, receive_buffer;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5 || napi_get_value_uint32(env, argv[0], &number) != napi_ok || number > 65535 ||
      napi_get_value_uint32(env, argv[1], &copy_range) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &max_length) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &receive_buffer) != napi_ok) {
    napi_throw_type_error(env, NULL, "queueOpen(number, copyRange, maxLength, receiveBuffer, callback)");
    return NULL;
  }
  nfq *q = calloc(1, sizeof *q);
  q->queue = (uint16_t)number;
  q->refs = 1; /* the libuv handles; the JS handle adds one below */
  q->reader.owner = q;
  q->reader.free_owner = release;
  q->reader.handle = on_packet;
  q->reader.drained = on_drained;
  q->reader.settled = on_settled;
  q->reader.budget = READ_BUDGET;
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) {
    free(q);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", "cannot open a netfilter netlink socket", -fd);
  }
  q->reader.fd = fd;
  nl_grow_receive_buffer(fd, receive_buffer > 0 ? (int)receive_buffer : 8 << 20);

  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, 0, ++q->seq, q->queue);
  struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND};
  nl_put(h, NFQA_CFG_CMD, &cmd, sizeof cmd);
  int err = nl_request_ack(fd, h, 2000, nl_reader_stash, &q->reader);
  if (err != 0) return config_error(env, q, "binding the queue was refused", -err);

  h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, 0, ++q->seq, q->queue);
  struct nfqnl_msg_config_params params = {.copy_range = htonl(copy_range), .copy_mode = NFQNL_COPY_PACKET};
  nl_put(h, NFQA_CFG_PARAMS, &params, sizeof params);
  if (max_length > 0) nl_put_be32(h, NFQA_CFG_QUEUE_MAXLEN, max_length);
  err = nl_request_ack(fd, h, 2000, nl_reader_stash, &q->reader);
  if (err != 0) return config_error(env, q, "queue copy mode or length refused", -err);

  h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, 0, ++q->seq, q->queue);
  nl_put_be32(h, NFQA_CFG_MASK, NFQA_CFG_F_UID_GID | NFQA_CFG_F_FAIL_OPEN);
  nl_put_be32(h, NFQA_CFG_FLAGS, NFQA_CFG_F_UID_GID); /* FAIL_OPEN cleared: see above */
  err = nl_request_ack(fd, h, 2000, nl_reader_stash, &q->reader);
  if (err != 0) return config_error(env, q, "queue flags refused", -err);

  err = nl_reader_start(&q->reader, env, argv[4], "warden:nfqueue");
  if (err != 0) return config_error(env, q, "cannot poll the queue socket", -err);
  napi_value handle;
  q->refs++;
  napi_create_external(env, q, finalize, NULL, &handle);
  return handle;
}

static nfq *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a queue handle");
    return NULL;
  }
  return data;
}

/* queueVerdict(handle, id, accept, mark?) */
napi_value queue_verdict(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t id, mark = 0;
  bool accept;
  napi_valuetype mark_type = napi_undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq *q = argc >= 3 ? unwrap(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok || napi_get_value_bool(env, argv[2], &accept) != napi_ok) {
    napi_throw_type_error(env, NULL, "queueVerdict(handle, id, accept, mark?)");
    return NULL;
  }
  if (argc >= 4) napi_typeof(env, argv[3], &mark_type);
  if (mark_type == napi_number) napi_get_value_uint32(env, argv[3], &mark);
  if (q->reader.closing) {
    napi_throw_error(env, "WARDEN_E_KERNEL_QUEUE", "the queue is closed");
    return NULL;
  }
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT, NLM_F_REQUEST, ++q->seq, q->queue);
  struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(accept ? NF_ACCEPT : NF_DROP), .id = htonl(id)};
  nl_put(h, NFQA_VERDICT_HDR, &v, sizeof v);
  if (mark_type == napi_number) nl_put_be32(h, NFQA_MARK, mark);
  size_t size = NLMSG_ALIGN(h->nlmsg_len);
  if (q->pending_len + size > sizeof q->pending) send_pending(q);
  if (q->pending_count == 0) q->oldest = uv_hrtime();
  memcpy(q->pending + q->pending_len, h, h->nlmsg_len);
  q->pending_len += size;
  q->pending_count++;
  if (!q->reader.draining) {
    /* Not inside a read of the queue: nothing else will send it soon, so send it now. */
    int err = send_pending(q);
    if (err != 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", "sending a verdict failed", err);
  }
  return NULL;
}

napi_value queue_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq *q = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (q == NULL) return NULL;
  napi_create_object(env, &out);
  js_set_double(env, out, "received", (double)q->reader.received);
  js_set_double(env, out, "verdicts", (double)q->verdicts);
  js_set_double(env, out, "datagrams", (double)q->datagrams);
  js_set_double(env, out, "sendErrors", (double)q->send_errors);
  js_set_double(env, out, "unsent", (double)q->unsent);
  js_set_double(env, out, "enobufs", (double)q->reader.enobufs);
  js_set_double(env, out, "truncated", (double)q->reader.truncated);
  js_set_double(env, out, "kernelErrors", (double)q->reader.errors);
  return out;
}

napi_value queue_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nfq *q = argc >= 1 ? unwrap(env, argv[0]) : NULL;
  if (q == NULL || q->reader.closing) return NULL;
  send_pending(q); /* the verdicts already given go out first */
  /* Unbind explicitly (closing the socket would too) so a new queue can bind at once. */
  nl_message m;
  struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, NLM_F_REQUEST, ++q->seq, q->queue);
  struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_UNBIND};
  nl_put(h, NFQA_CFG_CMD, &cmd, sizeof cmd);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  sendto(q->reader.fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  nl_reader_close(&q->reader);
  return NULL;
}
