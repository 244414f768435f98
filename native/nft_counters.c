/*
 * counterDump(table, sets): Warden's rule counters in table `inet <table>`, read on a thread of the
 * libuv pool (the event loop is not blocked by the dumps), resolved as one ArrayBuffer of records
 * (one JS value: 10,000 N-API values cost more than the dump). Records, each 4-byte aligned:
 *   u16 set (index into `sets`; 0xffff: a named counter object), u8 length, u8 0, f64 packets
 *   (host order), then `length` bytes: the object's name, or the element's key as the kernel holds
 *   it (for an interval element its start; interval end elements carry no counter and are skipped).
 * The named counter objects whose names start with "c_" (rules written inline) come from one
 * NFT_MSG_GETOBJ dump filtered by table and type, the per-element counters of the given sets
 * (`counter` in their declaration) from one NFT_MSG_GETSETELEM dump per set; the engine maps an
 * element's key back to its rule from the compiled ruleset (no comment per element). Counters at 0
 * are left out: the engine takes a counter it does not see as 0 (rule-counters.ts). No nft process
 * and no cache of the table (nft 1.0.6 fetches the whole table to list one counter: ~0.4 s at
 * 10,000 rules). A 2 s limit per dump; the socket is opened per call, in the namespace of the
 * pool's thread, which is the process's (Warden never changes a thread's namespace). A missing
 * table or set reads as empty.
 *
 * counterDump(table, sets, "counts") counts instead: it resolves one u32 (host order) per set, the
 * elements the kernel holds in it (an interval counts once: its end element is not counted), for
 * the check after a full load (nft lists 100,000 elements in 1.6 s; these dumps take milliseconds).
 *
 * counterDump(table, [], "names") names what the table holds, as records of the layout above whose
 * set field says the kind (NAME_* below; a counter object is OBJECT_SET) and whose packets are 0:
 * the table itself when it exists, then its chains, sets (anonymous ones left out), maps and counter
 * objects. `nft -t list table` takes 0.5 s at 100,000 elements (it fetches them all first).
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
/* Reads of a dump interrupted by a ruleset change (NLM_F_DUMP_INTR) before giving up with EAGAIN. */
#define DUMP_ATTEMPTS 3
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

#define OBJECT_SET 0xffff
#define NAME_TABLE 0xfff0
#define NAME_CHAIN 0xfff1
#define NAME_SET 0xfff2
#define NAME_MAP 0xfff3
#define RECORD_HEADER 12

typedef enum { MODE_COUNTERS, MODE_COUNTS, MODE_NAMES } dump_mode;

typedef struct {
  char *bytes;
  size_t used, cap;
  uint16_t set; /* the set being dumped (OBJECT_SET for counter objects) */
  uint32_t *counts; /* counting: elements per set instead of records; NULL otherwise */
  const char *table; /* naming: only what belongs to this table */
  size_t table_len;
} out_records;

static int emit_record(out_records *o, const void *data, size_t len, double packets) {
  if (len > 255) return 0;
  size_t size = RECORD_HEADER + ((len + 3) & ~(size_t)3);
  if (o->used + size > o->cap) {
    size_t cap = o->cap * 2 + size;
    char *bigger = realloc(o->bytes, cap);
    if (bigger == NULL) return ENOMEM;
    o->bytes = bigger;
    o->cap = cap;
  }
  char *r = o->bytes + o->used;
  memset(r, 0, size);
  memcpy(r, &o->set, 2);
  r[2] = (char)len;
  memcpy(r + 4, &packets, 8);
  memcpy(r + RECORD_HEADER, data, len);
  o->used += size;
  return 0;
}

static int emit(out_records *o, const void *data, size_t len, double packets) {
  return packets > 0 ? emit_record(o, data, len, packets) : 0;
}

/* A string attribute's text without its NUL; *len set. */
static const char *attr_text(const struct nlattr *a, size_t *len) {
  const char *text = nl_attr_data(a);
  *len = strnlen(text, nl_attr_len(a));
  return text;
}

/* Whether a string attribute names o->table. */
static bool of_table(const out_records *o, const struct nlattr *a) {
  size_t len = 0;
  const char *text = a == NULL ? NULL : attr_text(a, &len);
  return text != NULL && len == o->table_len && memcmp(text, o->table, len) == 0;
}

/* A name record of `kind` for the string attribute `name`. */
static int emit_name(out_records *o, uint16_t kind, const struct nlattr *name) {
  if (name == NULL) return 0;
  size_t len = 0;
  const char *text = attr_text(name, &len);
  o->set = kind;
  return emit_record(o, text, len, 0);
}

static int table_name(out_records *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_TABLE_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_TABLE_MAX);
  return of_table(o, a[NFTA_TABLE_NAME]) ? emit_name(o, NAME_TABLE, a[NFTA_TABLE_NAME]) : 0;
}

static int chain_name(out_records *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_CHAIN_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_CHAIN_MAX);
  return of_table(o, a[NFTA_CHAIN_TABLE]) ? emit_name(o, NAME_CHAIN, a[NFTA_CHAIN_NAME]) : 0;
}

static int set_name(out_records *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_SET_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_SET_MAX);
  if (!of_table(o, a[NFTA_SET_TABLE])) return 0;
  uint32_t flags = a[NFTA_SET_FLAGS] != NULL && nl_attr_len(a[NFTA_SET_FLAGS]) >= 4 ? nl_attr_be32(a[NFTA_SET_FLAGS]) : 0;
  if (flags & NFT_SET_ANONYMOUS) return 0;
  return emit_name(o, (flags & (NFT_SET_MAP | NFT_SET_OBJECT)) ? NAME_MAP : NAME_SET, a[NFTA_SET_NAME]);
}

static int object_name(out_records *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_OBJ_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_OBJ_MAX);
  return of_table(o, a[NFTA_OBJ_TABLE]) ? emit_name(o, OBJECT_SET, a[NFTA_OBJ_NAME]) : 0;
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

/* The bytes of a data attribute (NFTA_DATA_VALUE inside it); NULL when absent. */
static const void *data_value(const struct nlattr *data, size_t *len) {
  FOR_ATTRS(d, nl_attr_data(data), nl_attr_len(data)) {
    if ((d->nla_type & NLA_TYPE_MASK) == NFTA_DATA_VALUE) {
      *len = nl_attr_len(d);
      return nl_attr_data(d);
    }
  }
  return NULL;
}

/* One set element: its key (the start, for an interval) and its counter; interval ends are skipped. */
static int set_element(out_records *o, const struct nlattr *elem) {
  const void *key = NULL;
  size_t key_len = 0;
  double packets = -1;
  uint32_t flags = 0;
  FOR_ATTRS(a, nl_attr_data(elem), nl_attr_len(elem)) {
    int t = a->nla_type & NLA_TYPE_MASK;
    if (t == NFTA_SET_ELEM_KEY) {
      key = data_value(a, &key_len);
    } else if (t == NFTA_SET_ELEM_FLAGS && nl_attr_len(a) >= 4) {
      flags = nl_attr_be32(a);
    } else if (t == NFTA_SET_ELEM_EXPR) {
      packets = expr_packets(a);
    } else if (t == NFTA_SET_ELEM_EXPRESSIONS) {
      FOR_ATTRS(e, nl_attr_data(a), nl_attr_len(a)) {
        double p = expr_packets(e);
        if (p >= 0) packets = p;
      }
    }
  }
  if (key == NULL || (flags & NFT_SET_ELEM_INTERVAL_END) != 0) return 0;
  if (o->counts != NULL) {
    o->counts[o->set]++;
    return 0;
  }
  return emit(o, key, key_len, packets);
}

/* A counter object message: its name and packets. */
static int counter_object(out_records *o, const struct nlmsghdr *r) {
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
static int set_elements(out_records *o, const struct nlmsghdr *r) {
  const struct nlattr *a[NFTA_SET_ELEM_LIST_MAX + 1];
  nl_parse_attrs(r, sizeof(struct nfgenmsg), a, NFTA_SET_ELEM_LIST_MAX);
  if (a[NFTA_SET_ELEM_LIST_ELEMENTS] == NULL) return 0;
  FOR_ATTRS(e, nl_attr_data(a[NFTA_SET_ELEM_LIST_ELEMENTS]), nl_attr_len(a[NFTA_SET_ELEM_LIST_ELEMENTS])) {
    int err = set_element(o, e);
    if (err != 0) return err;
  }
  return 0;
}

/*
 * Sends a dump request and hands each answer to `each`; 0, or an errno (ENOENT: nothing to dump is 0).
 * EAGAIN when the kernel marked an answer NLM_F_DUMP_INTR: the table changed during the dump (a reload),
 * so what was read may mix two rulesets and must be read again.
 */
static int dump(int fd, struct nlmsghdr *h, out_records *o,
                int (*each)(out_records *, const struct nlmsghdr *), char *buf) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return errno;
  int64_t deadline = now_ms() + DUMP_TIMEOUT_MS;
  int interrupted = 0;
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
      if (r->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = 1;
      if (r->nlmsg_type == NLMSG_DONE) return interrupted ? EAGAIN : 0;
      if (r->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(r);
        return e->error == 0 || e->error == -ENOENT ? 0 : -e->error;
      }
      int err = each(o, r);
      if (err != 0) return err;
    }
  }
}

/* One read: its arguments (copied from JS), its result, and the promise it settles. */
typedef struct {
  char table[64];
  size_t table_len;
  dump_mode mode;
  char (*sets)[64];
  uint32_t set_count;
  out_records out;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} dump_job;

static void dump_all(int fd, dump_job *job, char *buf, uint32_t *seqp, int *errp);
static void dump_names(int fd, dump_job *job, char *buf, uint32_t *seqp, int *errp);

/* On a pool thread: every dump, into job->out (no N-API call here). */
static void dump_execute(napi_env env, void *data) {
  (void)env;
  dump_job *job = data;
  int fd = nl_open(NETLINK_NETFILTER, 1);
  if (fd < 0) {
    job->err = -fd;
    return;
  }
  nl_grow_receive_buffer(fd, 4 << 20);
  job->out.bytes = malloc(1 << 16);
  job->out.cap = 1 << 16;
  char *buf = malloc(NL_RECV_SIZE);
  int err = (job->out.bytes == NULL || buf == NULL) ? ENOMEM : 0;
  uint32_t seq = 0;
  /* A dump the kernel says was interrupted by a change is read again from the start, a few times. */
  for (int attempt = 0; attempt < DUMP_ATTEMPTS && (attempt == 0 || err == EAGAIN); attempt++) {
    if (attempt > 0) {
      err = 0;
      job->out.used = 0;
      if (job->out.counts != NULL) memset(job->out.counts, 0, job->set_count * sizeof *job->out.counts);
    }
    (job->mode == MODE_NAMES ? dump_names : dump_all)(fd, job, buf, &seq, &err);
  }
  free(buf);
  close(fd);
  job->err = err;
}

/* One pass over the counter objects, then each set's elements, into job->out; the first error in *err. */
static void dump_all(int fd, dump_job *job, char *buf, uint32_t *seqp, int *errp) {
  int err = *errp;
  uint32_t seq = *seqp;
  if (err == 0 && job->out.counts == NULL) {
    nl_message m;
    struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETOBJ, NLM_F_REQUEST | NLM_F_DUMP, ++seq, 0);
    ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
    nl_put(h, NFTA_OBJ_TABLE, job->table, job->table_len + 1);
    nl_put_be32(h, NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    job->out.set = OBJECT_SET;
    err = dump(fd, h, &job->out, counter_object, buf);
  }
  for (uint32_t i = 0; err == 0 && i < job->set_count; i++) {
    size_t set_len = strlen(job->sets[i]);
    if (set_len == 0) continue;
    nl_message m;
    struct nlmsghdr *h =
        nfnl_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, ++seq, 0);
    ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
    nl_put(h, NFTA_SET_ELEM_LIST_TABLE, job->table, job->table_len + 1);
    nl_put(h, NFTA_SET_ELEM_LIST_SET, job->sets[i], set_len + 1);
    job->out.set = (uint16_t)i;
    err = dump(fd, h, &job->out, set_elements, buf);
  }
  *seqp = seq;
  *errp = err;
}

/* The table (a request with an acknowledgement), then its chains, sets and counter objects. */
static void dump_names(int fd, dump_job *job, char *buf, uint32_t *seqp, int *errp) {
  static const struct {
    uint8_t msg;
    uint16_t table_attr;
    int (*each)(out_records *, const struct nlmsghdr *);
  } steps[] = {
      {NFT_MSG_GETTABLE, NFTA_TABLE_NAME, table_name},
      {NFT_MSG_GETCHAIN, NFTA_CHAIN_TABLE, chain_name},
      {NFT_MSG_GETSET, NFTA_SET_TABLE, set_name},
      {NFT_MSG_GETOBJ, NFTA_OBJ_TABLE, object_name},
  };
  int err = *errp;
  uint32_t seq = *seqp;
  job->out.table = job->table;
  job->out.table_len = job->table_len;
  for (size_t i = 0; err == 0 && i < sizeof steps / sizeof steps[0]; i++) {
    /* No table: nothing else to name. */
    if (i == 1 && job->out.used == 0) break;
    uint16_t flags = NLM_F_REQUEST | (i == 0 ? NLM_F_ACK : NLM_F_DUMP);
    nl_message m;
    struct nlmsghdr *h = nfnl_start(&m, NFNL_SUBSYS_NFTABLES, steps[i].msg, flags, ++seq, 0);
    ((struct nfgenmsg *)NLMSG_DATA(h))->nfgen_family = FAMILY_INET;
    nl_put(h, steps[i].table_attr, job->table, job->table_len + 1);
    if (steps[i].msg == NFT_MSG_GETOBJ) nl_put_be32(h, NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    err = dump(fd, h, &job->out, steps[i].each, buf);
  }
  *seqp = seq;
  *errp = err;
}

/* Back on the event loop: the records as one ArrayBuffer, or the error. */
static void dump_complete(napi_env env, napi_status status, void *data) {
  dump_job *job = data;
  napi_value result = NULL;
  int err = status == napi_ok ? job->err : ECANCELED;
  void *bytes = NULL;
  const void *from = job->out.counts != NULL ? (const void *)job->out.counts : job->out.bytes;
  size_t size = job->out.counts != NULL ? job->set_count * sizeof *job->out.counts : job->out.used;
  if (err == 0 && napi_create_arraybuffer(env, size, &bytes, &result) == napi_ok) {
    if (size > 0) memcpy(bytes, from, size);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    char message[256];
    snprintf(message, sizeof message, "nft counter dump failed: %s", strerror(err != 0 ? err : ENOMEM));
    napi_value code, text, error;
    napi_create_string_utf8(env, "WARDEN_E_KERNEL_RULESET_REJECTED", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job->out.bytes);
  free(job->out.counts);
  free(job->sets);
  free(job);
}

napi_value counter_dump(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t sets = 0;
  bool is_array = false, counting;
  dump_job *job = calloc(1, sizeof *job);
  if (job == NULL) return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump", ENOMEM);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], job->table, sizeof job->table, &job->table_len) != napi_ok ||
      job->table_len == 0 || job->table_len >= sizeof job->table - 1 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &sets) != napi_ok || sets >= OBJECT_SET) {
    free(job);
    napi_throw_type_error(env, NULL, "counterDump(table, sets): a table name and an array of set names");
    return NULL;
  }
  char mode[16] = "";
  if (argc >= 3) napi_get_value_string_utf8(env, argv[2], mode, sizeof mode, NULL);
  job->mode = strcmp(mode, "counts") == 0 ? MODE_COUNTS : strcmp(mode, "names") == 0 ? MODE_NAMES : MODE_COUNTERS;
  counting = job->mode == MODE_COUNTS;
  job->sets = calloc(sets > 0 ? sets : 1, sizeof *job->sets);
  if (counting) job->out.counts = calloc(sets > 0 ? sets : 1, sizeof *job->out.counts);
  if (job->sets == NULL || (counting && job->out.counts == NULL)) {
    free(job->out.counts);
    free(job->sets);
    free(job);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump", ENOMEM);
  }
  job->set_count = sets;
  for (uint32_t i = 0; i < sets; i++) {
    napi_value v;
    size_t len = 0;
    /* A name that is not a string, or too long (N-API cuts it short: another name), stays empty: that set is skipped. */
    if (napi_get_element(env, argv[1], i, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, job->sets[i], sizeof job->sets[i], &len) != napi_ok ||
        len >= sizeof job->sets[i] - 1)
      job->sets[i][0] = 0;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "warden:counterDump", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, dump_execute, dump_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free(job->out.counts);
    free(job->sets);
    free(job);
    napi_throw_error(env, "WARDEN_E_KERNEL_RULESET_REJECTED", "nft counter dump: cannot start the read");
    return NULL;
  }
  return promise;
}
