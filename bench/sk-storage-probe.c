/*
 * Prototype (issue 12 goal 2): would per-socket BPF storage (BPF_MAP_TYPE_SK_STORAGE) read through
 * sock_diag (INET_DIAG_REQ_SK_BPF_STORAGES) give the socket and its record in one round trip,
 * instead of sock_diag then a lookup of the cookie in the LRU hash (native/sock_diag.c, bpf_attr.c)?
 * It fills both maps with a 384-byte record per socket from user space (an sk_storage map takes the
 * socket's fd as its key), then per fresh connected socket times:
 *   - the exact sock_diag lookup then BPF_MAP_LOOKUP_ELEM of its cookie (what the engine does);
 *   - the exact sock_diag lookup asking for the sk_storage map (and whether the record came back);
 *   - a dump (NLM_F_DUMP) filtered to that local port by bytecode, asking for the sk_storage map.
 * Build and run as root: gcc -O2 -std=gnu11 -o /tmp/sk-storage-probe bench/sk-storage-probe.c &&
 * /tmp/sk-storage-probe 1000   (THRASH=1: dirty 32 MiB and fork/exec between samples, a cold CPU).
 * Result on 6.18 (docs/attribution.md, "Why not per-socket storage"): the exact lookup never returns
 * the storage (the kernel only gives it to dumps); a dump walks the whole socket hash: ~1.1 ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <stddef.h>
#include <sys/wait.h>
#define VSIZE 384
static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int btf_load(void) {
  struct { struct btf_header h; struct btf_type t1; uint32_t i1; struct btf_type t2; uint32_t i2; struct btf_type t3; struct btf_array a3; char str[32]; } __attribute__((packed)) b;
  memset(&b, 0, sizeof b);
  const char strs[] = "\0int\0u8";
  b.h.magic = BTF_MAGIC; b.h.version = BTF_VERSION; b.h.hdr_len = sizeof b.h;
  b.h.type_off = 0; b.h.type_len = offsetof(typeof(b), str) - sizeof b.h; b.h.str_off = b.h.type_len; b.h.str_len = sizeof strs;
  b.t1.name_off = 1; b.t1.info = BTF_KIND_INT << 24; b.t1.size = 4; b.i1 = (BTF_INT_SIGNED << 24) | 32;
  b.t2.name_off = 5; b.t2.info = BTF_KIND_INT << 24; b.t2.size = 1; b.i2 = 8;
  b.t3.info = BTF_KIND_ARRAY << 24; b.a3.type = 2; b.a3.index_type = 1; b.a3.nelems = VSIZE;
  memcpy(b.str, strs, sizeof strs);
  static char log[4096];
  union bpf_attr a; memset(&a, 0, sizeof a);
  a.btf = (uint64_t)(uintptr_t)&b; a.btf_size = sizeof b.h + b.h.type_len + b.h.str_len;
  a.btf_log_buf = (uint64_t)(uintptr_t)log; a.btf_log_size = sizeof log; a.btf_log_level = 1;
  int fd = sys_bpf(BPF_BTF_LOAD, &a);
  if (fd < 0) { fprintf(stderr, "btf: %s\n%s\n", strerror(errno), log); exit(1); }
  return fd;
}
static int diag;
static uint32_t seq;
static int lookup(struct sockaddr_in *l, struct sockaddr_in *r, int stg_fd, uint64_t *cookie, int *got) {
  char req[256] __attribute__((aligned(8))); memset(req, 0, sizeof req);
  struct nlmsghdr *h = (void *)req; h->nlmsg_type = SOCK_DIAG_BY_FAMILY; h->nlmsg_flags = NLM_F_REQUEST; h->nlmsg_seq = ++seq;
  struct inet_diag_req_v2 *q = NLMSG_DATA(h);
  q->sdiag_family = AF_INET; q->sdiag_protocol = IPPROTO_TCP; q->idiag_states = ~0u;
  q->id.idiag_sport = l->sin_port; q->id.idiag_dport = r->sin_port;
  memcpy(q->id.idiag_src, &l->sin_addr, 4); memcpy(q->id.idiag_dst, &r->sin_addr, 4);
  q->id.idiag_cookie[0] = q->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  h->nlmsg_len = NLMSG_LENGTH(sizeof *q);
  if (stg_fd >= 0) {
    struct nlattr *outer = (void *)(req + NLMSG_ALIGN(h->nlmsg_len));
    outer->nla_type = INET_DIAG_REQ_SK_BPF_STORAGES | NLA_F_NESTED;
    struct nlattr *in = (void *)((char *)outer + NLA_HDRLEN);
    in->nla_type = SK_DIAG_BPF_STORAGE_REQ_MAP_FD; in->nla_len = NLA_HDRLEN + 4; *(uint32_t *)((char *)in + NLA_HDRLEN) = stg_fd;
    outer->nla_len = NLA_HDRLEN + NLA_ALIGN(in->nla_len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + outer->nla_len;
  }
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(diag, h, h->nlmsg_len, 0, (void *)&k, sizeof k) < 0) { perror("send"); exit(1); }
  char buf[8192] __attribute__((aligned(8)));
  ssize_t n = recv(diag, buf, sizeof buf, 0);
  if (n < 0) { perror("recv"); exit(1); }
  struct nlmsghdr *m = (void *)buf;
  if (m->nlmsg_type == NLMSG_ERROR) { fprintf(stderr, "err %d\n", ((struct nlmsgerr *)NLMSG_DATA(m))->error); return -1; }
  struct inet_diag_msg *d = NLMSG_DATA(m);
  *cookie = (uint64_t)d->id.idiag_cookie[0] | ((uint64_t)d->id.idiag_cookie[1] << 32);
  *got = 0;
  int len = m->nlmsg_len - NLMSG_LENGTH(sizeof *d);
  for (struct nlattr *a = (void *)((char *)d + NLMSG_ALIGN(sizeof *d)); len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
       len -= NLA_ALIGN(a->nla_len), a = (void *)((char *)a + NLA_ALIGN(a->nla_len))) {
    if ((a->nla_type & NLA_TYPE_MASK) == INET_DIAG_SK_BPF_STORAGES) *got = a->nla_len;
  }
  return 0;
}

static int dump_lookup(struct sockaddr_in *l, int stg_fd, int *found, int *got) {
  char req[256] __attribute__((aligned(8))); memset(req, 0, sizeof req);
  struct nlmsghdr *h = (void *)req; h->nlmsg_type = SOCK_DIAG_BY_FAMILY; h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP; h->nlmsg_seq = ++seq;
  struct inet_diag_req_v2 *q = NLMSG_DATA(h);
  q->sdiag_family = AF_INET; q->sdiag_protocol = IPPROTO_TCP; q->idiag_states = 1 << 1; /* ESTABLISHED */
  h->nlmsg_len = NLMSG_LENGTH(sizeof *q);
  /* bytecode: sport == l->sin_port */
  struct nlattr *bc = (void *)(req + NLMSG_ALIGN(h->nlmsg_len));
  bc->nla_type = INET_DIAG_REQ_BYTECODE;
  struct inet_diag_bc_op *op = (void *)((char *)bc + NLA_HDRLEN);
  op[0].code = INET_DIAG_BC_S_EQ; op[0].yes = 8; op[0].no = 12; op[1].code = 0; op[1].yes = 0; op[1].no = ntohs(l->sin_port);
  bc->nla_len = NLA_HDRLEN + 8;
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(bc->nla_len);
  struct nlattr *outer = (void *)(req + h->nlmsg_len);
  outer->nla_type = INET_DIAG_REQ_SK_BPF_STORAGES | NLA_F_NESTED;
  struct nlattr *in = (void *)((char *)outer + NLA_HDRLEN);
  in->nla_type = SK_DIAG_BPF_STORAGE_REQ_MAP_FD; in->nla_len = NLA_HDRLEN + 4; *(uint32_t *)((char *)in + NLA_HDRLEN) = stg_fd;
  outer->nla_len = NLA_HDRLEN + NLA_ALIGN(in->nla_len);
  h->nlmsg_len += outer->nla_len;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(diag, h, h->nlmsg_len, 0, (void *)&k, sizeof k) < 0) { perror("send"); exit(1); }
  *found = 0; *got = 0;
  for (;;) {
    char buf[16384] __attribute__((aligned(8)));
    ssize_t n = recv(diag, buf, sizeof buf, 0);
    if (n < 0) { perror("recv"); exit(1); }
    for (struct nlmsghdr *m = (void *)buf; NLMSG_OK(m, (size_t)n); m = NLMSG_NEXT(m, n)) {
      if (m->nlmsg_type == NLMSG_DONE) return 0;
      if (m->nlmsg_type == NLMSG_ERROR) { fprintf(stderr, "dump err %d\n", ((struct nlmsgerr *)NLMSG_DATA(m))->error); return -1; }
      struct inet_diag_msg *d = NLMSG_DATA(m); (*found)++;
      int len = m->nlmsg_len - NLMSG_LENGTH(sizeof *d);
      for (struct nlattr *a = (void *)((char *)d + NLMSG_ALIGN(sizeof *d)); len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
           len -= NLA_ALIGN(a->nla_len), a = (void *)((char *)a + NLA_ALIGN(a->nla_len)))
        if ((a->nla_type & NLA_TYPE_MASK) == INET_DIAG_SK_BPF_STORAGES) *got = a->nla_len;
    }
  }
}
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  int N = argc > 1 ? atoi(argv[1]) : 2000;
  int btf = btf_load();
  union bpf_attr a; memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_SK_STORAGE; a.key_size = 4; a.value_size = VSIZE; a.max_entries = 0; a.map_flags = BPF_F_NO_PREALLOC;
  a.btf_fd = btf; a.btf_key_type_id = 1; a.btf_value_type_id = 3;
  int stg = sys_bpf(BPF_MAP_CREATE, &a);
  if (stg < 0) { perror("sk_storage map"); return 1; }
  memset(&a, 0, sizeof a); a.map_type = BPF_MAP_TYPE_LRU_HASH; a.key_size = 8; a.value_size = VSIZE; a.max_entries = 65536;
  int lru = sys_bpf(BPF_MAP_CREATE, &a);
  if (lru < 0) { perror("lru"); return 1; }
  diag = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  int srv = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
  bind(srv, (void *)&sa, sizeof sa); listen(srv, 4096); socklen_t sl = sizeof sa; getsockname(srv, (void *)&sa, &sl);
  double *ta = calloc(N, sizeof(double)), *tb = calloc(N, sizeof(double)), *tc = calloc(N, sizeof(double));
  char value[VSIZE]; memset(value, 7, sizeof value);
  int ok = 0, dok = 0; double *td = calloc(N, sizeof(double));
  for (int i = 0; i < N; i++) {
    int fds[2]; struct sockaddr_in ls[2];
    for (int j = 0; j < 2; j++) {
      fds[j] = socket(AF_INET, SOCK_STREAM, 0);
      connect(fds[j], (void *)&sa, sizeof sa);
      socklen_t l2 = sizeof ls[j]; getsockname(fds[j], (void *)&ls[j], &l2);
      uint64_t ck; socklen_t cl = sizeof ck; getsockopt(fds[j], SOL_SOCKET, SO_COOKIE, &ck, &cl);
      memset(&a, 0, sizeof a); a.map_fd = stg; a.key = (uint64_t)(uintptr_t)&fds[j]; a.value = (uint64_t)(uintptr_t)value; a.flags = BPF_ANY;
      if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("stg update"); return 1; }
      memset(&a, 0, sizeof a); a.map_fd = lru; a.key = (uint64_t)(uintptr_t)&ck; a.value = (uint64_t)(uintptr_t)value;
      if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("lru update"); return 1; }
    }
    usleep(200); if (getenv("THRASH")) { static char *big; if (!big) big = malloc(32 << 20); for (int z = 0; z < (32 << 20); z += 64) big[z]++; if (fork() == 0) { execl("/bin/true", "true", NULL); _exit(0); } wait(NULL); }
    int first = i & 1;
    for (int k = 0; k < 2; k++) {
      int which = k ^ first; int fd = fds[which];
      uint64_t ck; int got; double t0 = now_us();
      if (which == 0) {
        lookup(&ls[0], &sa, -1, &ck, &got);
        char out[VSIZE]; memset(&a, 0, sizeof a); a.map_fd = lru; a.key = (uint64_t)(uintptr_t)&ck; a.value = (uint64_t)(uintptr_t)out;
        int r = sys_bpf(BPF_MAP_LOOKUP_ELEM, &a); ta[i] = now_us() - t0; if (r) { perror("lru lookup"); return 1; }
      } else {
        lookup(&ls[1], &sa, stg, &ck, &got); tb[i] = now_us() - t0; if (got) ok++;
      }
      (void)fd;
    }
    { uint64_t ck; int got; double t0 = now_us(); lookup(&ls[0], &sa, -1, &ck, &got); tc[i] = now_us() - t0; }
    { int f, g; double t0 = now_us(); dump_lookup(&ls[1], stg, &f, &g); td[i] = now_us() - t0; if (g && f == 1) dok++; }
    close(fds[0]); close(fds[1]);
  }
  qsort(ta, N, sizeof(double), cmp); qsort(tb, N, sizeof(double), cmp); qsort(tc, N, sizeof(double), cmp);
  printf("N=%d storage returned %d/%d\n", N, ok, N);
  printf("diag+lru lookup   median %.2f us p99 %.2f\n", ta[N / 2], ta[N * 99 / 100]);
  printf("diag with storage median %.2f us p99 %.2f\n", tb[N / 2], tb[N * 99 / 100]);
  qsort(td, N, sizeof(double), cmp); printf("dump+filter+storage median %.2f us p99 %.2f (storage %d/%d)\n", td[N / 2], td[N * 99 / 100], dok, N);
  printf("diag alone (repeat) median %.2f us p99 %.2f\n", tc[N / 2], tc[N * 99 / 100]);
  return 0;
}
