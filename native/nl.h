/*
 * Raw netlink helpers shared by the NFQUEUE, NFLOG and sock_diag bindings: building messages with
 * attributes, sending a request and checking the kernel's acknowledgement, and the one event-loop
 * reader (uv_poll on a non-blocking socket, every queued datagram drained per wakeup).
 */
#ifndef WARDEN_NL_H
#define WARDEN_NL_H

#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define NL_BUFFER_SIZE 8192
#define NL_RECV_SIZE 65536

/* A message under construction; the buffer is aligned for struct nlmsghdr. */
typedef struct {
  union {
    struct nlmsghdr header;
    char bytes[NL_BUFFER_SIZE];
  } u;
} nl_message;

struct nlmsghdr *nl_start(nl_message *m, uint16_t type, uint16_t flags, uint32_t seq);
/* Starts a nfnetlink message: nlmsghdr + nfgenmsg (res_id in network order). */
struct nlmsghdr *nfnl_start(nl_message *m, uint8_t subsys, uint8_t msg, uint16_t flags, uint32_t seq,
                            uint16_t res_id);
void nl_put(struct nlmsghdr *h, uint16_t type, const void *data, size_t len);
void nl_put_be32(struct nlmsghdr *h, uint16_t type, uint32_t host_value);

/* Opens a non-blocking netlink socket; returns the fd or -errno. */
int nl_open(int protocol, int nonblocking);
/* Enlarges the receive buffer (SO_RCVBUFFORCE when allowed, else SO_RCVBUF). */
void nl_grow_receive_buffer(int fd, int bytes);
/*
 * Sends a request that carries NLM_F_ACK and waits (up to timeout_ms) for its acknowledgement.
 * Returns 0 or -errno (the kernel's error). Other messages read meanwhile are handed to stash.
 */
typedef void (*nl_stash_fn)(void *context, const char *data, size_t len);
int nl_request_ack(int fd, struct nlmsghdr *h, int timeout_ms, nl_stash_fn stash, void *context);

/* Iterates attributes of a message after a header of fixed size; fills table[type] (up to max). */
void nl_parse_attrs(const struct nlmsghdr *h, size_t fixed, const struct nlattr **table, int max);
const void *nl_attr_data(const struct nlattr *a);
size_t nl_attr_len(const struct nlattr *a);
uint32_t nl_attr_be32(const struct nlattr *a);

/* Throws a JS Error "<what>: <strerror>" with code `code` and returns NULL (for N-API callbacks). */
napi_value nl_throw_errno(napi_env env, const char *code, const char *what, int err);

/* A netlink socket whose datagrams are delivered to handle() from the event loop. */
typedef struct nl_reader nl_reader;
typedef void (*nl_handle_fn)(nl_reader *r, const struct nlmsghdr *h);
struct nl_reader {
  napi_env env;
  int fd;
  uv_poll_t poll;
  uv_timer_t timer; /* delivers messages stashed while waiting for a configuration ack */
  napi_ref callback;
  napi_async_context async;
  nl_handle_fn handle;
  /* Optional: called after each read of the socket, once the callbacks' promises have settled. */
  void (*drained)(nl_reader *r);
  /* Set while the messages of one read are handed to JS (microtasks of the callbacks included). */
  int draining;
  /* Optional: each message gets its own callback scope (its promises settle before the next is
     handed out), and this is called after each. */
  void (*settled)(nl_reader *r);
  /* Most datagrams read per wakeup (0: until the socket is empty); the rest wait for the next turn. */
  int budget;
  char *stash;
  size_t stash_len;
  int closing;
  uint64_t received;
  uint64_t enobufs;
  uint64_t truncated;
  uint64_t errors;
  void *owner;
  void (*free_owner)(void *owner);
};

void nl_reader_stash(void *reader, const char *data, size_t len);
/* Starts polling; returns 0 or a libuv error. */
int nl_reader_start(nl_reader *r, napi_env env, napi_value callback, const char *name);
/* Calls the JS callback with one argument (inside the callback scope of a wakeup). */
void nl_reader_emit(nl_reader *r, napi_value argument);
/* The same with several arguments (cheaper than an object built property by property through N-API). */
void nl_reader_emit_args(nl_reader *r, size_t argc, const napi_value *argv);
/* Stops polling, closes the socket, and frees the owner once libuv has let go of the handles. */
void nl_reader_close(nl_reader *r);

/* Object property helpers. */
void js_set_uint(napi_env env, napi_value obj, const char *name, uint32_t value);
void js_set_double(napi_env env, napi_value obj, const char *name, double value);
void js_set_string(napi_env env, napi_value obj, const char *name, const char *value, size_t len);
void js_set_buffer(napi_env env, napi_value obj, const char *name, const void *data, size_t len);

#endif
