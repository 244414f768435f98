/*
 * Exact (non-dump) INET_DIAG lookup of one socket by its addresses and ports: the kernel finds it in
 * its hash tables (about 5 us), where /proc/net/tcp costs milliseconds. Synchronous on purpose.
 * One NETLINK_SOCK_DIAG socket is kept open; it belongs to the namespace the process runs in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"
#include "bpf_attr.h"
#include "nl.h"

static int diag_fd = -1;
static uint32_t diag_seq;

static int read_address(napi_env env, napi_value value, int family, __be32 out[4]) {
  char text[64];
  size_t len;
  if (napi_get_value_string_utf8(env, value, text, sizeof text, &len) != napi_ok) return 0;
  memset(out, 0, 16);
  return inet_pton(family == 6 ? AF_INET6 : AF_INET, text, out) == 1;
}


/*
 * The answer: numbers in a Float64Array the caller gives and keeps (no JS value made per number),
 * strings in a small array; the objects are built in JS (src/kernel/native.ts, ownerOf): setting
 * named properties from C makes a key string per property and call, and each napi value made costs
 * more than the lookup's own syscalls on a cold CPU. NaN where nothing was read.
 * Numbers: 0 inode, 1 uid, 2 state, 3 1 with a record (else 0 and no more); then 4 pid, 5 tid,
 *   6 uid, 7 gid, 8 bootNs, 9 hook (0 create, 1 connect, 2 sendmsg), 10 euid, 11 parentPid,
 *   12 the executable's mount id, 13 its file system's magic.
 * Strings: 0 cookie (decimal); with a record 1 comm, 2 commandLine, 3 the executable's id, 4 its
 *   inode (decimal), each undefined when not read.
 */
enum { S_COOKIE, S_COMM, S_COMMAND_LINE, S_EXE_ID, S_EXE_INODE };

static void set_string(napi_env env, napi_value array, uint32_t at, const char *text, size_t len) {
  napi_value v;
  napi_create_string_utf8(env, text, len, &v);
  napi_set_element(env, array, at, v);
}

/* What a record says: who, which program made it, the effective uid and parent, the executable. */
static void record_fields(napi_env env, double *n, napi_value strings, const struct bpf_attr_record *r) {
  bpf_attr_record_numbers(n, r);
  set_string(env, strings, S_COMM, r->comm, strnlen(r->comm, sizeof r->comm));
  /* The command line when the record holds all of it (NUL-separated, as /proc/PID/cmdline). */
  if (r->args_read == 0 && r->args_len > 0 && r->args_len <= BPF_ATTR_ARGS)
    set_string(env, strings, S_COMMAND_LINE, r->args, r->args_len);
  /* The executable's identity: every field that tells one file and its path from another (mount
   * id, device, inode, generation, change time, the path's fingerprint), for the engine's cache of
   * executable paths; only when all was read and the path had at most BPF_ATTR_PATH_LEVELS levels. */
  if (!bpf_attr_exe_known(r)) return;
  char text[160];
  int len = snprintf(text, sizeof text, "%d:%u:%llu:%u:%lld.%u:%llx", r->exe_mnt_id, r->exe_dev,
                     (unsigned long long)r->exe_ino, r->exe_generation, (long long)r->exe_ctime_sec,
                     r->exe_ctime_nsec & 0x3fffffffu /* without I_CTIME_QUERIED */,
                     (unsigned long long)r->path_hash);
  set_string(env, strings, S_EXE_ID, text, (size_t)len);
  len = snprintf(text, sizeof text, "%llu", (unsigned long long)r->exe_ino);
  set_string(env, strings, S_EXE_INODE, text, (size_t)len);
}

/*
 * socketLookup(protocol 6|17, family 4|6, src, srcPort, dst, dstPort, bpfHandle|undefined, numbers)
 *   -> [cookie, ...the record's strings] | null, the numbers written to `numbers` (a Float64Array of
 *   at least N_COUNT, above). With a handle of bpfAttributionOpen, the socket's cookie is looked up
 *   in its map too (bpf_attr.c); numbers[3] is 0 when the map holds no record for it.
 */
napi_value socket_lookup(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_typedarray_type numbers_type = napi_int8_array;
  size_t numbers_length = 0;
  void *numbers_data = NULL;
  uint32_t protocol, family, sport, dport;
  struct inet_diag_req_v2 req;
  memset(&req, 0, sizeof req);
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 || napi_get_value_uint32(env, argv[0], &protocol) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &family) != napi_ok || (family != 4 && family != 6) ||
      napi_get_value_uint32(env, argv[3], &sport) != napi_ok || sport > 65535 ||
      napi_get_value_uint32(env, argv[5], &dport) != napi_ok || dport > 65535 ||
      !read_address(env, argv[2], (int)family, req.id.idiag_src) ||
      !read_address(env, argv[4], (int)family, req.id.idiag_dst) || argc < 8 ||
      napi_get_typedarray_info(env, argv[7], &numbers_type, &numbers_length, &numbers_data, NULL, NULL) != napi_ok ||
      numbers_type != napi_float64_array || numbers_length < N_COUNT) {
    napi_throw_type_error(env, NULL,
                          "socketLookup(protocol, family, src, srcPort, dst, dstPort, bpf, Float64Array(14))");
    return NULL;
  }
  if (diag_fd < 0) {
    diag_fd = nl_open(NETLINK_SOCK_DIAG, 0);
    if (diag_fd < 0) {
      int err = -diag_fd;
      diag_fd = -1;
      return nl_throw_errno(env, "WARDEN_E_KERNEL_SOCKET_LOOKUP", "cannot open a sock_diag socket", err);
    }
  }
  req.sdiag_family = family == 6 ? AF_INET6 : AF_INET;
  req.sdiag_protocol = (uint8_t)protocol;
  req.idiag_states = ~0u;
  req.id.idiag_sport = htons((uint16_t)sport);
  req.id.idiag_dport = htons((uint16_t)dport);
  req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  nl_message m;
  struct nlmsghdr *h = nl_start(&m, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, ++diag_seq);
  memcpy(NLMSG_DATA(h), &req, sizeof req);
  h->nlmsg_len = NLMSG_LENGTH(sizeof req);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(diag_fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
    return nl_throw_errno(env, "WARDEN_E_KERNEL_SOCKET_LOOKUP", "sock_diag request failed", errno);
  char buffer[8192] __attribute__((aligned(8)));
  for (;;) {
    ssize_t n = recv(diag_fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return nl_throw_errno(env, "WARDEN_E_KERNEL_SOCKET_LOOKUP", "sock_diag answer failed", errno);
    }
    for (struct nlmsghdr *r = (struct nlmsghdr *)buffer; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != diag_seq) continue; /* a late answer to an earlier request */
      napi_value result;
      if (r->nlmsg_type == NLMSG_ERROR) {
        int err = -((struct nlmsgerr *)NLMSG_DATA(r))->error;
        if (err == ENOENT || err == 0) {
          napi_get_null(env, &result);
          return result;
        }
        return nl_throw_errno(env, "WARDEN_E_KERNEL_SOCKET_LOOKUP", "sock_diag lookup refused", err);
      }
      if (r->nlmsg_type != SOCK_DIAG_BY_FAMILY || r->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        continue;
      const struct inet_diag_msg *d = NLMSG_DATA(r);
      double *n = numbers_data;
      for (int i = 0; i < N_COUNT; i++) n[i] = NAN;
      n[N_INODE] = (double)d->idiag_inode;
      n[N_UID] = d->idiag_uid;
      n[N_STATE] = d->idiag_state;
      n[N_RECORD] = 0;
      napi_create_array(env, &result);
      uint64_t cookie = (uint64_t)d->id.idiag_cookie[0] | ((uint64_t)d->id.idiag_cookie[1] << 32);
      char decimal[24]; /* a string: exact (a bigint would not survive JSON.stringify) */
      int decimal_len = snprintf(decimal, sizeof decimal, "%llu", (unsigned long long)cookie);
      set_string(env, result, S_COOKIE, decimal, (size_t)decimal_len);
      napi_valuetype type = napi_undefined;
      napi_typeof(env, argv[6], &type);
      int map_fd = type == napi_external ? bpf_attr_map_fd(env, argv[6]) : -1;
      struct bpf_attr_record record;
      if (map_fd >= 0 && bpf_attr_lookup(map_fd, cookie, &record) == 0) record_fields(env, n, result, &record);
      return result;
    }
  }
}
