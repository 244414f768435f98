/*
 * NFQUEUE binding: binds one queue over a raw NETLINK_NETFILTER socket, hands each queued packet
 * (metadata + the first copy-range bytes) to a JS callback from the event loop, and sends verdicts
 * whenever JS decides (synchronously or later).
 *
 * Verdicts are sent by a thread of the addon, not by the event loop: a verdict's sendto() runs the
 * accepted packet through the rest of the kernel's path (the remaining hooks, the device, often the
 * peer's answer in softirq), tens of microseconds the event loop would otherwise spend there instead
 * of judging the next packet. queueVerdict() appends to a list under a mutex and wakes the thread;
 * the thread sends everything waiting in one datagram of several verdict messages (the kernel
 * handles each and answers an error for one without dropping the rest).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"
#include "nl.h"

typedef struct {
  uint32_t id;
  uint32_t verdict;
  uint32_t mark;
  uint32_t has_mark;
} pending_verdict;

/* One datagram of verdicts: at most this many bytes (a verdict message is 32 or 40 bytes). */
#define VERDICT_DATAGRAM 32768

typedef struct {
  nl_reader reader;
  uint16_t queue;
  uint32_t seq;
  int refs; /* the JS handle + the libuv handles */
  /* The verdict thread and what it shares with the event loop (under lock). */
  pthread_t sender;
  int sender_running;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pending_verdict *pending;
  size_t count, capacity;
  int stop;
  uint64_t verdicts;    /* sent */
  uint64_t send_errors; /* datagrams the kernel did not take (sendto failed) */
  uint64_t unsent;      /* verdicts in those datagrams */
  uint32_t send_seq;    /* the thread's own sequence numbers */
} nfq;

/* Appends the verdict messages of batch[0..n) to buf (room for VERDICT_DATAGRAM bytes); returns how many fit. */
static size_t put_verdicts(nfq *q, const pending_verdict *batch, size_t n, char *buf, size_t *len) {
  size_t i = 0;
  *len = 0;
  for (; i < n; i++) {
    nl_message m;
    struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT, NLM_F_REQUEST, ++q->send_seq, q->queue);
    struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(batch[i].verdict), .id = htonl(batch[i].id)};
    nl_put(h, NFQA_VERDICT_HDR, &v, sizeof v);
    if (batch[i].has_mark) nl_put_be32(h, NFQA_MARK, batch[i].mark);
    size_t size = NLMSG_ALIGN(h->nlmsg_len);
    if (*len + size > VERDICT_DATAGRAM) break;
    memcpy(buf + *len, h, h->nlmsg_len);
    *len += size;
  }
  return i;
}

static void *sender_main(void *arg) {
  nfq *q = arg;
  static __thread char buf[VERDICT_DATAGRAM] __attribute__((aligned(8)));
  pending_verdict *batch = NULL;
  size_t batch_capacity = 0;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (q->count == 0 && !q->stop) pthread_cond_wait(&q->wake, &q->lock);
    if (q->count == 0) break; /* stopping, and every verdict was sent */
    /* Take the whole list; the event loop goes on appending to the other one. */
    pending_verdict *taken = q->pending;
    size_t n = q->count, taken_capacity = q->capacity;
    q->pending = batch;
    q->capacity = batch_capacity;
    q->count = 0;
    batch = taken;
    batch_capacity = taken_capacity;
    pthread_mutex_unlock(&q->lock);
    uint64_t sent = 0, errors = 0, unsent = 0;
    for (size_t done = 0; done < n;) {
      size_t len;
      size_t k = put_verdicts(q, batch + done, n - done, buf, &len);
      ssize_t r;
      while ((r = sendto(q->reader.fd, buf, len, 0, (struct sockaddr *)&kernel, sizeof kernel)) < 0 && errno == EINTR) {
      }
      if (r < 0) {
        errors++;
        unsent += k;
      } else {
        sent += k;
      }
      done += k;
    }
    pthread_mutex_lock(&q->lock);
    q->verdicts += sent;
    q->send_errors += errors;
    q->unsent += unsent;
  }
  pthread_mutex_unlock(&q->lock);
  free(batch);
  return NULL;
}

/* Sends what is waiting, then ends the thread. Called on the event loop before the socket closes. */
static void stop_sender(nfq *q) {
  if (!q->sender_running) return;
  pthread_mutex_lock(&q->lock);
  q->stop = 1;
  pthread_cond_signal(&q->wake);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->sender, NULL);
  q->sender_running = 0;
}

static void release(void *owner) {
  nfq *q = owner;
  if (--q->refs > 0) return;
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->wake);
  free(q->pending);
  free(q);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nfq *q = data;
  stop_sender(q);
  if (!q->reader.closing) {
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
  napi_env env = r->env;
  napi_value p;
  napi_create_object(env, &p);
  js_set_uint(env, p, "id", ntohl(ph.packet_id));
  js_set_uint(env, p, "hwProtocol", ntohs(ph.hw_protocol));
  js_set_uint(env, p, "hook", ph.hook);
  js_set_uint(env, p, "mark", a[NFQA_MARK] ? nl_attr_be32(a[NFQA_MARK]) : 0);
  if (a[NFQA_UID]) js_set_uint(env, p, "uid", nl_attr_be32(a[NFQA_UID]));
  if (a[NFQA_GID]) js_set_uint(env, p, "gid", nl_attr_be32(a[NFQA_GID]));
  if (a[NFQA_IFINDEX_INDEV]) js_set_uint(env, p, "indev", nl_attr_be32(a[NFQA_IFINDEX_INDEV]));
  if (a[NFQA_IFINDEX_OUTDEV]) js_set_uint(env, p, "outdev", nl_attr_be32(a[NFQA_IFINDEX_OUTDEV]));
  if (a[NFQA_PAYLOAD])
    js_set_buffer(env, p, "payload", nl_attr_data(a[NFQA_PAYLOAD]), nl_attr_len(a[NFQA_PAYLOAD]));
  else
    js_set_buffer(env, p, "payload", "", 0);
  nl_reader_emit(r, p);
}

static napi_value config_error(napi_env env, nfq *q, const char *what, int err) {
  nl_throw_errno(env, "WARDEN_E_KERNEL_QUEUE", what, err);
  stop_sender(q);
  close(q->reader.fd);
  free(q->reader.stash);
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->wake);
  free(q->pending);
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
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->wake, NULL);
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) {
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
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

  err = pthread_create(&q->sender, NULL, sender_main, q);
  if (err != 0) return config_error(env, q, "cannot start the verdict thread", err);
  q->sender_running = 1;
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
  pthread_mutex_lock(&q->lock);
  if (q->count == q->capacity) {
    size_t capacity = q->capacity == 0 ? 256 : q->capacity * 2;
    pending_verdict *grown = realloc(q->pending, capacity * sizeof *grown);
    if (grown == NULL) {
      pthread_mutex_unlock(&q->lock);
      napi_throw_error(env, "WARDEN_E_KERNEL_QUEUE", "out of memory for a verdict");
      return NULL;
    }
    q->pending = grown;
    q->capacity = capacity;
  }
  q->pending[q->count++] = (pending_verdict){
      .id = id, .verdict = accept ? NF_ACCEPT : NF_DROP, .mark = mark, .has_mark = mark_type == napi_number};
  if (q->count == 1) pthread_cond_signal(&q->wake); /* the thread sleeps only while the list is empty */
  pthread_mutex_unlock(&q->lock);
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
  pthread_mutex_lock(&q->lock);
  js_set_double(env, out, "verdicts", (double)q->verdicts);
  js_set_double(env, out, "verdictsWaiting", (double)q->count);
  js_set_double(env, out, "sendErrors", (double)q->send_errors);
  js_set_double(env, out, "unsent", (double)q->unsent);
  pthread_mutex_unlock(&q->lock);
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
  stop_sender(q); /* the verdicts already given go out first */
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
