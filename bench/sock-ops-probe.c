/*
 * Probe (issue 12 goal 2): can a BPF_PROG_TYPE_SOCK_OPS program on a cgroup publish each TCP
 * connect's four-tuple, cookie, socket inode and owner, and the attribution record in a
 * memory-mapped BPF array (native/bpf_tuple.c), so that the engine reads them without a system call?
 * It loads the real program (this file includes native/bpf_tuple.c), an empty record LRU filled from
 * user space per socket (the attribution programs do it in the engine), attaches to a cgroup of its
 * own, moves itself in, and per connected socket checks the slot against getsockname, SO_COOKIE,
 * fstat and getuid, then that closing the socket empties the slot; it times the read from memory
 * against the exact sock_diag lookup followed by BPF_MAP_LOOKUP_ELEM (what the engine did).
 * Then (COST=N, default 2000) it times N connect+accept+close with the program attached and
 * detached, alternating, three turns each.
 * Build and run as root: gcc -O2 -std=gnu11 -I/usr/include/node -o /tmp/sock-ops-probe
 *   bench/sock-ops-probe.c native/bpf_btf.c native/bpf_guard.c && /tmp/sock-ops-probe 1000
 */
#define BPF_TUPLE_PROBE
#include "../native/bpf_tuple.c"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/stat.h>
#include <time.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void move_to(const char *cgroup) {
  char path[512];
  snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
  FILE *f = fopen(path, "w");
  if (f == NULL || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}
static int diag_fd;
/* The exact sock_diag lookup then the record by cookie: what the engine did before. */
static int diag_then_map(const struct sockaddr_in *l, const struct sockaddr_in *r, int map_fd, struct bpf_attr_record *rec) {
  struct {
    struct nlmsghdr h;
    struct inet_diag_req_v2 q;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.q.sdiag_family = AF_INET;
  req.q.sdiag_protocol = IPPROTO_TCP;
  req.q.idiag_states = ~0u;
  req.q.id.idiag_sport = l->sin_port;
  req.q.id.idiag_dport = r->sin_port;
  memcpy(req.q.id.idiag_src, &l->sin_addr, 4);
  memcpy(req.q.id.idiag_dst, &r->sin_addr, 4);
  req.q.id.idiag_cookie[0] = req.q.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK};
  if (sendto(diag_fd, &req, sizeof req, 0, (struct sockaddr *)&k, sizeof k) < 0) return -1;
  char buf[8192] __attribute__((aligned(8)));
  ssize_t n = recv(diag_fd, buf, sizeof buf, 0);
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  if (n <= 0 || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -1;
  const struct inet_diag_msg *d = NLMSG_DATA(h);
  uint64_t cookie = (uint64_t)d->id.idiag_cookie[0] | ((uint64_t)d->id.idiag_cookie[1] << 32);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)map_fd;
  a.key = (uint64_t)(uintptr_t)&cookie;
  a.value = (uint64_t)(uintptr_t)rec;
  return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 200;
  const char *mount = "/sys/fs/cgroup/unified";
  char cgroup[256], home[600] = "";
  snprintf(cgroup, sizeof cgroup, "%s/warden-probe-sockops-%d", mount, getpid());
  if (mkdir(cgroup, 0755) != 0) return perror(cgroup), 1;
  FILE *self = fopen("/proc/self/cgroup", "r");
  char line[512];
  while (self && fgets(line, sizeof line, self))
    if (strncmp(line, "0::", 3) == 0) {
      line[strcspn(line, "\n")] = 0;
      snprintf(home, sizeof home, "%s%s", mount, line + 3);
    }
  if (self) fclose(self);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_LRU_HASH;
  a.key_size = 8;
  a.value_size = sizeof(struct bpf_attr_record);
  a.max_entries = 4096;
  int lru = (int)sys_bpf(BPF_MAP_CREATE, &a);
  if (lru < 0) return perror("lru"), 1;
  static struct bpf_tuple t;
  char why[512];
  int err = bpf_tuple_open(&t, cgroup, lru, why, sizeof why);
  if (err < 0) {
    printf("OPEN FAILED: %s (%s)\n", why, strerror(-err));
    rmdir(cgroup);
    return 1;
  }
  printf("loaded and attached: %zu-byte slots, %u slots, netns cookie %llu\n", sizeof(struct bpf_tuple_slot),
         BPF_TUPLE_SLOTS, (unsigned long long)t.netns);
  move_to(cgroup);
  diag_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  bind(srv, (struct sockaddr *)&sa, sizeof sa);
  listen(srv, 4096);
  getsockname(srv, (struct sockaddr *)&sa, &sl);
  int ok = 0, cleared = 0, bad = 0;
  double *mem = calloc((size_t)count, sizeof(double)), *old = calloc((size_t)count, sizeof(double));
  for (int i = 0; i < count; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    uint64_t cookie;
    socklen_t cl = sizeof cookie;
    getsockopt(c, SOL_SOCKET, SO_COOKIE, &cookie, &cl);
    struct bpf_attr_record rec;
    memset(&rec, 0, sizeof rec);
    rec.pid_tgid = ((uint64_t)getpid() << 32) | (uint64_t)i;
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)lru;
    a.key = (uint64_t)(uintptr_t)&cookie;
    a.value = (uint64_t)(uintptr_t)&rec;
    sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) return perror("connect"), 1;
    struct sockaddr_in local;
    socklen_t ll = sizeof local;
    getsockname(c, (struct sockaddr *)&local, &ll);
    struct stat st;
    fstat(c, &st);
    struct bpf_tuple_slot slot;
    double t0 = now_us();
    int hit = bpf_tuple_read(&t, 4, &local.sin_addr, ntohs(local.sin_port), &sa.sin_addr, ntohs(sa.sin_port), &slot);
    double t1 = now_us();
    struct bpf_attr_record via;
    int found = diag_then_map(&local, &sa, lru, &via);
    double t2 = now_us();
    mem[i] = t1 - t0;
    old[i] = t2 - t1;
    if (hit && slot.cookie == cookie && slot.inode == (uint64_t)st.st_ino && slot.uid == getuid() &&
        slot.record.pid_tgid == rec.pid_tgid && found == 0 && via.pid_tgid == rec.pid_tgid)
      ok++;
    else if (bad++ < 3)
      printf("mismatch %d: hit %d cookie %llu/%llu inode %llu/%llu uid %u sock_read %d recorded %llu lport %u rport %08x\n", i, hit,
             (unsigned long long)slot.cookie, (unsigned long long)cookie, (unsigned long long)slot.inode,
             (unsigned long long)st.st_ino, slot.uid, slot.sock_read, (unsigned long long)slot.recorded,
             slot.key.local_port, slot.key.remote_port);
    int a2 = accept(srv, NULL, NULL);
    close(c);
    close(a2);
    if (!bpf_tuple_read(&t, 4, &local.sin_addr, ntohs(local.sin_port), &sa.sin_addr, ntohs(sa.sin_port), &slot)) cleared++;
  }
  qsort(mem, (size_t)count, sizeof(double), cmp);
  qsort(old, (size_t)count, sizeof(double), cmp);
  printf("%d/%d slots exact (cookie, inode, uid, record), %d/%d emptied at close\n", ok, count, cleared, count);
  printf("read from the mapped slot: median %.2f us, p99 %.2f us\n", mem[count / 2], mem[count * 99 / 100]);
  printf("sock_diag + map lookup:    median %.2f us, p99 %.2f us\n", old[count / 2], old[count * 99 / 100]);
  printf("reads: hits %llu empty %llu other %llu busy %llu poisoned %llu unread %llu\n", (unsigned long long)t.hits,
         (unsigned long long)t.empty, (unsigned long long)t.other, (unsigned long long)t.busy,
         (unsigned long long)t.poisoned, (unsigned long long)t.unread);
  /* The program's own cost per connection (connect, accept, close: CONNECT_CB and the state
   * changes), attached against detached, alternating (COST=N connections per turn). */
  int per = getenv("COST") ? atoi(getenv("COST")) : 2000;
  for (int turn = 0; turn < 6 && per > 0; turn++) {
    int on = turn % 2 == 0;
    if (!on && t.link_fd >= 0) {
      close(t.link_fd);
      t.link_fd = -1;
    } else if (on && t.link_fd < 0) {
      memset(&a, 0, sizeof a);
      a.link_create.prog_fd = (uint32_t)t.prog_fd;
      a.link_create.target_fd = (uint32_t)t.cgroup_fd;
      a.link_create.attach_type = BPF_CGROUP_SOCK_OPS;
      t.link_fd = (int)sys_bpf(BPF_LINK_CREATE, &a);
    }
    double t0 = now_us();
    for (int i = 0; i < per; i++) {
      int c = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) return perror("connect"), 1;
      int a2 = accept(srv, NULL, NULL);
      close(a2);
      close(c);
    }
    printf("connect+accept+close, program %s: %.2f us each\n", on ? "attached" : "detached", (now_us() - t0) / per);
  }
  if (home[0]) move_to(home);
  bpf_tuple_free(&t);
  if (rmdir(cgroup) != 0) perror("rmdir");
  return ok == count && cleared == count ? 0 : 1;
}
