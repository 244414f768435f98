/*
 * The verdict cache's maps and the engine's side of them (docs/attribution.md, "Verdict cache"):
 * an LRU hash of keys (struct vcache_key) the engine fills with the decisions it made, a
 * one-element state array (the generation the connect programs put in keys, and counters), and a
 * ring buffer of hits (struct vcache_event) the engine drains. The programs that use them are
 * assembled in bpf_attr.c. The ring is read here without libbpf: its consumer page is mapped
 * read-write, its producer page and data (mapped twice by the kernel, so a record never wraps)
 * read-only; positions are read with acquire and written with release ordering.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "addon.h"
#include "bpf_attr.h"
#include "bpf_insn.h"
#include "nl.h"

static int map_create(enum bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries, const char *name) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = type;
  attr.key_size = key;
  attr.value_size = value;
  attr.max_entries = entries;
  strncpy(attr.map_name, name, sizeof attr.map_name - 1);
  int fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
  return fd < 0 ? -errno : fd;
}

void bpf_cache_free(struct bpf_cache *c) {
  if (c->consumer != NULL && c->consumer != MAP_FAILED) munmap(c->consumer, c->page);
  if (c->producer != NULL && c->producer != MAP_FAILED) munmap(c->producer, c->page + 2 * VCACHE_RING_BYTES);
  c->consumer = c->producer = NULL;
  if (c->map_fd >= 0) close(c->map_fd);
  if (c->state_fd >= 0) close(c->state_fd);
  if (c->ring_fd >= 0) close(c->ring_fd);
  c->map_fd = c->state_fd = c->ring_fd = -1;
}

int bpf_cache_create(struct bpf_cache *c, uint32_t entries) {
  c->page = (size_t)sysconf(_SC_PAGESIZE);
  c->map_fd = map_create(BPF_MAP_TYPE_LRU_HASH, sizeof(struct vcache_key), sizeof(uint32_t), entries, "warden_vcache");
  c->state_fd = map_create(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(struct vcache_state), 1, "warden_vstate");
  c->ring_fd = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, VCACHE_RING_BYTES, "warden_vring");
  int err = c->map_fd < 0 ? c->map_fd : c->state_fd < 0 ? c->state_fd : c->ring_fd < 0 ? c->ring_fd : 0;
  if (err == 0) {
    c->consumer = mmap(NULL, c->page, PROT_READ | PROT_WRITE, MAP_SHARED, c->ring_fd, 0);
    c->producer = mmap(NULL, c->page + 2 * VCACHE_RING_BYTES, PROT_READ, MAP_SHARED, c->ring_fd, (off_t)c->page);
    if (c->consumer == MAP_FAILED || c->producer == MAP_FAILED) err = -errno;
  }
  if (err < 0) {
    /* Each fd kept its own error: close the ones that opened. */
    if (c->map_fd < 0) c->map_fd = -1;
    if (c->state_fd < 0) c->state_fd = -1;
    if (c->ring_fd < 0) c->ring_fd = -1;
    bpf_cache_free(c);
  }
  return err;
}

/* The open cache of argv[0], or NULL with a TypeError thrown naming `call`. */
static struct bpf_cache *cache_of(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc,
                                  const char *call) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  struct bpf_cache *c = *argc >= 1 ? bpf_attr_cache(env, argv[0]) : NULL;
  if (c == NULL || c->map_fd < 0) {
    napi_throw_type_error(env, NULL, call);
    return NULL;
  }
  return c;
}

/* bpfCacheInsert(handle, key: Buffer of sizeof(struct vcache_key), id) */
napi_value bpf_cache_insert(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct bpf_cache *c = cache_of(env, info, argv, &argc, "bpfCacheInsert(open handle with a cache, key, id)");
  if (c == NULL) return NULL;
  void *key = NULL;
  size_t len = 0;
  uint32_t id;
  if (argc < 3 || napi_get_buffer_info(env, argv[1], &key, &len) != napi_ok || len != sizeof(struct vcache_key) ||
      napi_get_value_uint32(env, argv[2], &id) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfCacheInsert(handle, key: Buffer(80), id: uint32)");
    return NULL;
  }
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)c->map_fd;
  attr.key = (uint64_t)(uintptr_t)key;
  attr.value = (uint64_t)(uintptr_t)&id;
  /* A key cached already keeps its entry: within a generation a key always has the same decision, and
   * replacing it would leave the engine's entry of the first id never hit again. */
  attr.flags = BPF_NOEXIST;
  napi_value inserted;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0) {
    if (errno != EEXIST)
      return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot insert into the verdict cache", errno);
    napi_get_boolean(env, false, &inserted);
    return inserted;
  }
  napi_get_boolean(env, true, &inserted);
  return inserted;
}

static int state_read(struct bpf_cache *c, struct vcache_state *out) {
  uint32_t zero = 0;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)c->state_fd;
  attr.key = (uint64_t)(uintptr_t)&zero;
  attr.value = (uint64_t)(uintptr_t)out;
  return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0 ? 0 : -errno;
}

/*
 * bpfCacheGeneration(handle, generation, engineTgid): the programs put the generation in every key
 * from now on, so no entry inserted before is found again (the LRU evicts them); connections of
 * the process engineTgid always miss. The counters are kept: a read, then a write of the whole
 * value; a counter added by a program in between is lost, never a generation.
 */
napi_value bpf_cache_generation(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct bpf_cache *c = cache_of(env, info, argv, &argc, "bpfCacheGeneration(open handle with a cache, n, tgid)");
  if (c == NULL) return NULL;
  uint32_t generation, engine;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &generation) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &engine) != napi_ok) {
    napi_throw_type_error(env, NULL, "bpfCacheGeneration(handle, generation: uint32, engineTgid: uint32)");
    return NULL;
  }
  struct vcache_state state;
  if (state_read(c, &state) != 0)
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot read the verdict cache's state", errno);
  state.generation = generation;
  state.engine_tgid = engine;
  uint32_t zero = 0;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_fd = (uint32_t)c->state_fd;
  attr.key = (uint64_t)(uintptr_t)&zero;
  attr.value = (uint64_t)(uintptr_t)&state;
  attr.flags = BPF_ANY;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0)
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot set the verdict cache's generation", errno);
  return NULL;
}

/* bpfCacheStats(handle) -> [generation, hits, misses, dropped] | reason (string) when the cache is off. */
napi_value bpf_cache_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct bpf_cache *c = argc >= 1 ? bpf_attr_cache(env, argv[0]) : NULL;
  if (c == NULL || c->map_fd < 0) {
    const char *why = c != NULL && c->refused[0] ? c->refused : "not opened";
    napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &result);
    return result;
  }
  struct vcache_state state;
  if (state_read(c, &state) != 0)
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot read the verdict cache's state", errno);
  const uint64_t v[4] = {state.generation, state.hits, state.misses, state.dropped};
  napi_create_array_with_length(env, 4, &result);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value n;
    napi_create_double(env, (double)v[i], &n);
    napi_set_element(env, result, i, n);
  }
  return result;
}

/*
 * bpfCacheDrain(handle, max) -> [Buffer of events (struct vcache_event each), CLOCK_BOOTTIME ns now]:
 * takes up to `max` events from the ring and frees their room.
 */
_Static_assert((BPF_RINGBUF_HDR_SZ + sizeof(struct vcache_event)) % 8 == 0, "a ring record is a whole number of 8-byte units");

napi_value bpf_cache_drain(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, buffer, now;
  struct bpf_cache *c = cache_of(env, info, argv, &argc, "bpfCacheDrain(open handle with a cache, max)");
  if (c == NULL) return NULL;
  uint32_t max;
  if (argc < 2 || napi_get_value_uint32(env, argv[1], &max) != napi_ok || max == 0) {
    napi_throw_type_error(env, NULL, "bpfCacheDrain(handle, max > 0)");
    return NULL;
  }
  uint64_t *consumer = c->consumer;
  const uint64_t *producer = c->producer;
  const uint8_t *data = (const uint8_t *)c->producer + c->page;
  uint64_t cons = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
  const uint64_t prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
  /* The records there: each is a header and one event (40 bytes, a multiple of 8: no padding). */
  uint64_t available = (prod - cons) / (BPF_RINGBUF_HDR_SZ + sizeof(struct vcache_event));
  if (available > max) available = max;
  struct vcache_event *out = NULL;
  /* An empty ring (most calls): an empty buffer, no copy. Allocation failure: its exception is pending. */
  if (napi_create_buffer(env, available * sizeof *out, (void **)&out, &buffer) != napi_ok) return NULL;
  size_t n = 0;
  while (cons < prod && n < available) {
    const uint32_t *header = (const uint32_t *)(data + (cons & (VCACHE_RING_BYTES - 1)));
    const uint32_t len = __atomic_load_n(header, __ATOMIC_ACQUIRE);
    if (len & BPF_RINGBUF_BUSY_BIT) break; /* still being written */
    const uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    if (!(len & BPF_RINGBUF_DISCARD_BIT) && size == sizeof *out)
      memcpy(&out[n++], (const uint8_t *)header + BPF_RINGBUF_HDR_SZ, sizeof *out);
    cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
    __atomic_store_n(consumer, cons, __ATOMIC_RELEASE);
  }
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  napi_create_double(env, (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec, &now);
  napi_value sliced = buffer;
  if (n < available) {
    /* Fewer events than the room made (discarded records, one still being written): a copy of those read. */
    napi_create_buffer_copy(env, n * sizeof *out, out, NULL, &sliced);
  }
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, sliced);
  napi_set_element(env, result, 1, now);
  return result;
}

/* bpfCgroupPrograms(cgroupPath, hook: 'sock_ops' | 'setsockopt' | 'connect4' | 'connect6') -> how many
 * programs run there for the cgroup's sockets (its own and those inherited: BPF_F_QUERY_EFFECTIVE). */
napi_value bpf_cgroup_programs(napi_env env, napi_callback_info info) {
  static const struct {
    const char *name;
    enum bpf_attach_type type;
  } hooks[] = {{"sock_ops", BPF_CGROUP_SOCK_OPS},
               {"setsockopt", BPF_CGROUP_SETSOCKOPT},
               {"connect4", BPF_CGROUP_INET4_CONNECT},
               {"connect6", BPF_CGROUP_INET6_CONNECT}};
  size_t argc = 2;
  napi_value argv[2], result;
  char path[4096], hook[16];
  size_t len, hook_len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int type = -1;
  if (argc == 2 && napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) == napi_ok && len > 0 &&
      len < sizeof path - 1 && napi_get_value_string_utf8(env, argv[1], hook, sizeof hook, &hook_len) == napi_ok)
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++)
      if (strcmp(hook, hooks[i].name) == 0) type = (int)hooks[i].type;
  if (type < 0) {
    napi_throw_type_error(env, NULL, "bpfCgroupPrograms(cgroupPath, 'sock_ops' | 'setsockopt' | 'connect4' | 'connect6')");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot open the cgroup", errno);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)fd;
  attr.query.attach_type = (uint32_t)type;
  attr.query.query_flags = BPF_F_QUERY_EFFECTIVE;
  int r = (int)sys_bpf(BPF_PROG_QUERY, &attr);
  int err = errno;
  close(fd);
  if (r != 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot query the cgroup's programs", err);
  napi_create_uint32(env, attr.query.prog_cnt, &result);
  return result;
}

/*
 * The watch of the ring: the engine sleeps while no hit comes, instead of looking at the ring on a
 * timer. The connect programs write their events without BPF_RB_NO_WAKEUP, so the kernel signals
 * the ring's poll when an event lands in a ring the engine had emptied (the first after a drain),
 * not for every event. One-shot: the poll stops when it fires, and the engine arms it again once it
 * has drained; an event that came in between makes it fire at once (the ring's poll answers
 * readable while it holds data). It polls a duplicate of the ring's descriptor, so it lives apart
 * from the attribution handle; it holds no reference on the event loop.
 */
struct ring_watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int fd;
  int armed;
  int closed;
  int owners; /* the poll handle until closed, the JS external until finalized */
};

static void watch_release(struct ring_watch *w) {
  if (--w->owners > 0) return;
  if (w->fd >= 0) close(w->fd);
  free(w);
}

static void watch_closed(uv_handle_t *handle) { watch_release(handle->data); }

static void watch_close(struct ring_watch *w) {
  if (w->closed) return;
  w->closed = 1;
  uv_poll_stop(&w->poll);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static void watch_fired(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  struct ring_watch *w = poll->data;
  if (w->closed) return;
  uv_poll_stop(&w->poll);
  w->armed = 0;
  napi_handle_scope scope;
  napi_value callback, global, result;
  napi_open_handle_scope(w->env, &scope);
  napi_get_reference_value(w->env, w->callback, &callback);
  napi_get_global(w->env, &global);
  if (napi_make_callback(w->env, w->async, global, callback, 0, NULL, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(w->env, &error);
    napi_fatal_exception(w->env, error); /* an uncaughtException, as for any JS callback */
  }
  napi_close_handle_scope(w->env, scope);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct ring_watch *w = data;
  watch_close(w);
  watch_release(w);
}

/* The watch of a call's one argument, or NULL with a TypeError thrown naming `call`. */
static struct ring_watch *watch_of(napi_env env, napi_callback_info info, const char *call) {
  size_t argc = 1;
  napi_value argv[1];
  struct ring_watch *w = NULL;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc == 1 && napi_typeof(env, argv[0], &type) == napi_ok && type == napi_external)
    napi_get_value_external(env, argv[0], (void **)&w);
  if (w == NULL) napi_throw_type_error(env, NULL, call);
  return w;
}

/* bpfCacheWatch(handle, onEvents) -> watch: armed; onEvents() once when the ring gets events. */
napi_value bpf_cache_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, name;
  struct bpf_cache *c = cache_of(env, info, argv, &argc, "bpfCacheWatch(open handle with a cache, onEvents)");
  if (c == NULL) return NULL;
  napi_valuetype type;
  if (argc < 2 || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "bpfCacheWatch(handle, onEvents: function)");
    return NULL;
  }
  int fd = fcntl(c->ring_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot watch the verdict cache's ring", errno);
  struct ring_watch *w = calloc(1, sizeof *w);
  if (w == NULL) {
    close(fd);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot watch the verdict cache's ring", ENOMEM);
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  w->env = env;
  w->fd = fd;
  int err = uv_poll_init(loop, &w->poll, fd);
  if (err != 0) {
    close(fd);
    free(w);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot poll the verdict cache's ring", -err);
  }
  w->poll.data = w;
  uv_unref((uv_handle_t *)&w->poll);
  err = uv_poll_start(&w->poll, UV_READABLE, watch_fired);
  if (err != 0) {
    w->owners = 1; /* the handle alone: its close frees the watch and the descriptor */
    w->closed = 1;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot poll the verdict cache's ring", -err);
  }
  w->armed = 1;
  w->owners = 2;
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_create_string_utf8(env, "warden:verdict-cache-ring", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->async);
  napi_create_external(env, w, watch_finalize, NULL, &result);
  return result;
}

/* bpfCacheWatchArm(watch): fire again once the ring holds events (at once when it does now). */
napi_value bpf_cache_watch_arm(napi_env env, napi_callback_info info) {
  struct ring_watch *w = watch_of(env, info, "bpfCacheWatchArm(watch)");
  if (w == NULL) return NULL;
  if (!w->closed && !w->armed) {
    int err = uv_poll_start(&w->poll, UV_READABLE, watch_fired);
    if (err != 0) return nl_throw_errno(env, "WARDEN_E_KERNEL_BPF", "cannot poll the verdict cache's ring", -err);
    w->armed = 1;
  }
  return NULL;
}

/* bpfCacheWatchClose(watch): no more callbacks. */
napi_value bpf_cache_watch_close(napi_env env, napi_callback_info info) {
  struct ring_watch *w = watch_of(env, info, "bpfCacheWatchClose(watch)");
  if (w == NULL) return NULL;
  watch_close(w);
  return NULL;
}
