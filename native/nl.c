/*
 * Raw netlink helpers (see nl.h): message building, acknowledged requests, attribute parsing and
 * the event-loop reader shared by NFQUEUE and NFLOG.
 */
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nlmsghdr *nl_start(nl_message *m, uint16_t type, uint16_t flags, uint32_t seq) {
  memset(m, 0, sizeof(struct nlmsghdr));
  struct nlmsghdr *h = &m->u.header;
  h->nlmsg_len = NLMSG_LENGTH(0);
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  return h;
}

struct nlmsghdr *nfnl_start(nl_message *m, uint8_t subsys, uint8_t msg, uint16_t flags, uint32_t seq,
                            uint16_t res_id) {
  struct nlmsghdr *h = nl_start(m, (uint16_t)((subsys << 8) | msg), flags, seq);
  struct nfgenmsg g = {.nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0, .res_id = htons(res_id)};
  memcpy(NLMSG_DATA(h), &g, sizeof g);
  h->nlmsg_len = NLMSG_LENGTH(NLMSG_ALIGN(sizeof g));
  return h;
}

void nl_put(struct nlmsghdr *h, uint16_t type, const void *data, size_t len) {
  struct nlattr *a = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy((char *)a + NLA_HDRLEN, data, len);
  memset((char *)a + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

void nl_put_be32(struct nlmsghdr *h, uint16_t type, uint32_t host_value) {
  uint32_t v = htonl(host_value);
  nl_put(h, type, &v, sizeof v);
}

int nl_open(int protocol, int nonblocking) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), protocol);
  if (fd < 0) return -errno;
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

void nl_grow_receive_buffer(int fd, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int nl_request_ack(int fd, struct nlmsghdr *h, int timeout_ms, nl_stash_fn stash, void *context) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  static char buffer[NL_RECV_SIZE] __attribute__((aligned(8)));
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
      int64_t left = deadline - now_ms();
      if (left <= 0) return -ETIMEDOUT;
      struct pollfd p = {.fd = fd, .events = POLLIN};
      poll(&p, 1, (int)left);
      continue;
    }
    for (struct nlmsghdr *m = (struct nlmsghdr *)buffer; NLMSG_OK(m, (size_t)n); m = NLMSG_NEXT(m, n)) {
      if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == h->nlmsg_seq) {
        const struct nlmsgerr *e = NLMSG_DATA(m);
        return e->error; /* 0 is the acknowledgement, negative an errno */
      }
      if (stash != NULL) stash(context, (const char *)m, m->nlmsg_len);
    }
  }
}

void nl_parse_attrs(const struct nlmsghdr *h, size_t fixed, const struct nlattr **table, int max) {
  memset(table, 0, sizeof(*table) * (size_t)(max + 1));
  const char *start = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(fixed);
  const char *end = (const char *)h + h->nlmsg_len;
  while (start + NLA_HDRLEN <= end) {
    const struct nlattr *a = (const struct nlattr *)start;
    if (a->nla_len < NLA_HDRLEN || start + a->nla_len > end) break;
    int type = a->nla_type & NLA_TYPE_MASK;
    if (type <= max) table[type] = a;
    start += NLA_ALIGN(a->nla_len);
  }
}

const void *nl_attr_data(const struct nlattr *a) { return (const char *)a + NLA_HDRLEN; }
size_t nl_attr_len(const struct nlattr *a) { return a->nla_len - NLA_HDRLEN; }
uint32_t nl_attr_be32(const struct nlattr *a) {
  uint32_t v = 0;
  if (nl_attr_len(a) >= 4) memcpy(&v, nl_attr_data(a), 4);
  return ntohl(v);
}

napi_value nl_throw_errno(napi_env env, const char *code, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

void nl_reader_stash(void *reader, const char *data, size_t len) {
  nl_reader *r = reader;
  char *grown = realloc(r->stash, r->stash_len + len);
  if (grown == NULL) return;
  memcpy(grown + r->stash_len, data, len);
  r->stash = grown;
  r->stash_len += len;
}

static void dispatch(nl_reader *r, const char *data, size_t len) {
  int n = (int)len;
  for (const struct nlmsghdr *m = (const struct nlmsghdr *)data; NLMSG_OK(m, n) && !r->closing;
       m = NLMSG_NEXT(m, n)) {
    if (m->nlmsg_type == NLMSG_ERROR) {
      /* the kernel refused a request we sent without waiting (e.g. a verdict for an unknown id) */
      if (((const struct nlmsgerr *)NLMSG_DATA(m))->error != 0) r->errors++;
      continue;
    }
    if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_NOOP) continue;
    r->received++;
    if (r->settled == NULL) {
      r->handle(r, m);
      continue;
    }
    napi_callback_scope scope;
    napi_value resource;
    napi_handle_scope handles;
    napi_open_handle_scope(r->env, &handles);
    napi_create_object(r->env, &resource);
    napi_open_callback_scope(r->env, resource, r->async, &scope);
    r->handle(r, m);
    napi_close_callback_scope(r->env, scope);
    napi_close_handle_scope(r->env, handles);
    if (!r->closing) r->settled(r);
  }
}

/*
 * Runs fn inside a handle scope and a callback scope, so promises and nextTicks settle afterwards.
 * A reader with `settled` opens one scope per message instead (dispatch): a nested scope would not
 * settle anything until the outer one closed.
 */
static void with_callback_scope(nl_reader *r, void (*fn)(nl_reader *r)) {
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource;
  napi_open_handle_scope(r->env, &handles);
  if (r->settled != NULL) {
    fn(r);
    napi_close_handle_scope(r->env, handles);
    return;
  }
  napi_create_object(r->env, &resource);
  napi_open_callback_scope(r->env, resource, r->async, &scope);
  fn(r);
  napi_close_callback_scope(r->env, scope);
  napi_close_handle_scope(r->env, handles);
}

static void drain_stash(nl_reader *r) {
  char *stash = r->stash;
  size_t len = r->stash_len;
  r->stash = NULL;
  r->stash_len = 0;
  if (stash != NULL) dispatch(r, stash, len);
  free(stash);
}

static void drain_socket(nl_reader *r) {
  static char buffer[NL_RECV_SIZE] __attribute__((aligned(8)));
  drain_stash(r);
  /* With a budget the event loop gets its turn (timers, other sockets, the promises of this batch)
     even while datagrams keep coming; poll is level-triggered, so the rest is read next turn. */
  for (int reads = 0; !r->closing && (r->budget == 0 || reads < r->budget); reads++) {
    ssize_t n = recv(r->fd, buffer, sizeof buffer, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        r->enobufs++; /* the kernel dropped messages: our socket buffer overflowed */
        continue;
      }
      break; /* EAGAIN: drained */
    }
    if ((size_t)n > sizeof buffer) {
      r->truncated++;
      n = sizeof buffer;
    }
    dispatch(r, buffer, (size_t)n);
  }
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  nl_reader *r = poll->data;
  if (r->closing) return;
  r->draining = 1;
  with_callback_scope(r, drain_socket);
  r->draining = 0;
  if (r->drained != NULL && !r->closing) r->drained(r);
}

static void on_timer(uv_timer_t *timer) {
  nl_reader *r = timer->data;
  if (r->closing) return;
  r->draining = 1;
  with_callback_scope(r, drain_stash);
  r->draining = 0;
  if (r->drained != NULL && !r->closing) r->drained(r);
}

int nl_reader_start(nl_reader *r, napi_env env, napi_value callback, const char *name) {
  uv_loop_t *loop;
  napi_value resource, resource_name;
  r->env = env;
  napi_create_reference(env, callback, 1, &r->callback);
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, resource, resource_name, &r->async);
  napi_get_uv_event_loop(env, &loop);
  int err = uv_poll_init(loop, &r->poll, r->fd);
  if (err != 0) return err;
  uv_timer_init(loop, &r->timer);
  r->poll.data = r;
  r->timer.data = r;
  if (r->stash_len > 0) uv_timer_start(&r->timer, on_timer, 0, 0);
  return uv_poll_start(&r->poll, UV_READABLE, on_readable);
}

void nl_reader_emit(nl_reader *r, napi_value argument) { nl_reader_emit_args(r, 1, &argument); }

void nl_reader_emit_args(nl_reader *r, size_t argc, const napi_value *argv) {
  napi_value callback, global, result;
  napi_get_reference_value(r->env, r->callback, &callback);
  napi_get_global(r->env, &global);
  if (napi_call_function(r->env, global, callback, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(r->env, &error);
    napi_fatal_exception(r->env, error); /* becomes an uncaughtException, as for any JS callback */
  }
}

static void on_handle_closed(uv_handle_t *handle) {
  nl_reader *r = handle->data;
  if (--r->closing > 1) return; /* closing counts 1 + handles still open */
  free(r->stash);
  if (r->free_owner != NULL) r->free_owner(r->owner);
}

void nl_reader_close(nl_reader *r) {
  if (r->closing) return;
  r->closing = 3; /* 1 + poll + timer */
  napi_delete_reference(r->env, r->callback);
  napi_async_destroy(r->env, r->async);
  uv_poll_stop(&r->poll);
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->poll, on_handle_closed);
  uv_close((uv_handle_t *)&r->timer, on_handle_closed);
  close(r->fd);
  r->fd = -1;
}

void js_set_uint(napi_env env, napi_value obj, const char *name, uint32_t value) {
  napi_value v;
  napi_create_uint32(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

void js_set_string(napi_env env, napi_value obj, const char *name, const char *value, size_t len) {
  napi_value v;
  napi_create_string_utf8(env, value, len, &v);
  napi_set_named_property(env, obj, name, v);
}

void js_set_buffer(napi_env env, napi_value obj, const char *name, const void *data, size_t len) {
  napi_value v;
  void *copy;
  napi_create_buffer_copy(env, len, data, &copy, &v);
  napi_set_named_property(env, obj, name, v);
}

void js_set_double(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}
