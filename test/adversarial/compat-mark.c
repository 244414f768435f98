/*
 * Test-only attacker for test/adversarial/decided-mark.test.ts (compiled there with gcc): sets a
 * socket's mark through the system calls a 64-bit x86 process can make as 32-bit ones (`int $0x80`,
 * no multilib needed), which the kernel does not pass to cgroup/setsockopt programs.
 *
 *   compat-mark probe                       prints "ia32" when 32-bit system calls work (else dies)
 *   compat-mark HOST PORT MARK HOW [MS [hold]]
 *                                           HOW: native, compat (setsockopt, i386 366),
 *                                           socketcall (i386 102, SYS_SETSOCKOPT), uring (an
 *                                           io_uring SOCKET_URING_OP_SETSOCKOPT command) or
 *                                           uring-compat (the same on a ring set up by i386 425)
 * The second form connects without blocking to HOST:PORT (the connect programs see a miss and clear
 * the decided bit; the engine drops the SYN); with `hold` it prints "connecting" and waits for a
 * line on stdin. Then it sets SO_MARK to MARK the HOW way and prints "mark set" or "mark refused
 * ERRNO", then waits MS ms (default 3500) for a SYN sent again (after 1, 3, 7, 15 s) to connect:
 * "connected" or "not connected", and prints the socket's mark then ("mark 0x...", "mark 0").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/io_uring.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A 32-bit system call: number in eax, arguments in ebx, ecx, edx, esi, edi; pointers below 4 GiB. */
static long sys32(long nr, long a, long b, long c, long d, long e) {
  long ret;
  __asm__ volatile("push %%rbp\n\tint $0x80\n\tpop %%rbp"
                   : "=a"(ret)
                   : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                   : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

/*
 * setsockopt as an io_uring command (Linux 6.7; the system's header may be older: the fields by
 * their offsets in struct io_uring_sqe). `compat`: the ring is set up by the 32-bit system call, so
 * the kernel treats its commands as compat ones. 0 or -errno.
 */
static long uring_setsockopt(int s, uint32_t *value, int compat, struct io_uring_params *p) {
  memset(p, 0, sizeof *p);
  int ring = compat ? (int)sys32(425 /* i386 io_uring_setup */, 4, (long)(uintptr_t)p, 0, 0, 0)
                    : (int)syscall(__NR_io_uring_setup, 4, p);
  if (ring < 0) return compat ? ring : -errno;
  size_t sq_size = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
  size_t cq_size = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
  if (p->features & IORING_FEAT_SINGLE_MMAP) sq_size = cq_size = sq_size > cq_size ? sq_size : cq_size;
  uint8_t *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQ_RING);
  uint8_t *cq = (p->features & IORING_FEAT_SINGLE_MMAP)
                    ? sq
                    : mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_CQ_RING);
  uint8_t *sqe = mmap(NULL, p->sq_entries * 64, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqe == MAP_FAILED) return -ENOMEM;
  memset(sqe, 0, 64);
  sqe[0] = IORING_OP_URING_CMD;
  memcpy(sqe + 4, &s, 4);
  uint32_t word = 3; /* SOCKET_URING_OP_SETSOCKOPT, at cmd_op */
  memcpy(sqe + 8, &word, 4);
  word = SOL_SOCKET; /* level */
  memcpy(sqe + 16, &word, 4);
  word = SO_MARK; /* optname */
  memcpy(sqe + 20, &word, 4);
  word = 4; /* optlen */
  memcpy(sqe + 44, &word, 4);
  uint64_t optval = (uint64_t)(uintptr_t)value;
  memcpy(sqe + 48, &optval, 8);
  uint32_t *tail = (uint32_t *)(sq + p->sq_off.tail);
  uint32_t mask = *(uint32_t *)(sq + p->sq_off.ring_mask);
  ((uint32_t *)(sq + p->sq_off.array))[*tail & mask] = 0;
  __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -errno;
  uint32_t head = __atomic_load_n((uint32_t *)(cq + p->cq_off.head), __ATOMIC_ACQUIRE);
  uint32_t cq_mask = *(uint32_t *)(cq + p->cq_off.ring_mask);
  struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + p->cq_off.cqes) + (head & cq_mask);
  return cqe->res;
}

#define I386_GETPID 20
#define I386_SOCKETCALL 102
#define I386_SETSOCKOPT 366
#define SYS_SETSOCKOPT_ 14

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "probe") == 0) {
    long pid = sys32(I386_GETPID, 0, 0, 0, 0, 0);
    if (pid != (long)getpid()) return 1;
    puts("ia32");
    return 0;
  }
  if (argc < 5 || argc > 7 || (argc == 7 && strcmp(argv[6], "hold") != 0)) {
    fprintf(stderr, "usage: compat-mark probe | HOST PORT MARK native|compat|socketcall|uring|uring-compat [MS [hold]]\n");
    return 2;
  }
  int wait_ms = argc >= 6 ? atoi(argv[5]) : 3500;
  setvbuf(stdout, NULL, _IONBF, 0);
  /* The option's value and socketcall's argument block, where 32-bit pointers reach. */
  uint32_t *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
  if (low == MAP_FAILED) {
    perror("mmap MAP_32BIT");
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (s < 0 || fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) != 0) {
    perror("socket");
    return 2;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "compat-mark: bad address %s\n", argv[1]);
    return 2;
  }
  if (connect(s, (struct sockaddr *)&to, sizeof to) == 0 || errno != EINPROGRESS) {
    perror("connect");
    return 2;
  }
  if (argc == 7) {
    printf("connecting\n");
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) return 2;
  }
  low[0] = (uint32_t)strtoul(argv[3], NULL, 0);
  long err;
  if (strcmp(argv[4], "native") == 0) {
    err = setsockopt(s, SOL_SOCKET, SO_MARK, low, 4) == 0 ? 0 : -errno;
  } else if (strcmp(argv[4], "compat") == 0) {
    err = sys32(I386_SETSOCKOPT, s, SOL_SOCKET, SO_MARK, (long)(uintptr_t)low, 4);
  } else if (strcmp(argv[4], "socketcall") == 0) {
    uint32_t *args = low + 4;
    args[0] = (uint32_t)s;
    args[1] = SOL_SOCKET;
    args[2] = SO_MARK;
    args[3] = (uint32_t)(uintptr_t)low;
    args[4] = 4;
    err = sys32(I386_SOCKETCALL, SYS_SETSOCKOPT_, (long)(uintptr_t)args, 0, 0, 0);
  } else if (strcmp(argv[4], "uring") == 0 || strcmp(argv[4], "uring-compat") == 0) {
    err = uring_setsockopt(s, low, strcmp(argv[4], "uring-compat") == 0, (struct io_uring_params *)(low + 16));
  } else {
    fprintf(stderr, "compat-mark: unknown way %s\n", argv[4]);
    return 2;
  }
  if (err == 0)
    printf("mark set\n");
  else
    printf("mark refused %ld\n", -err);
  struct pollfd w = {.fd = s, .events = POLLOUT};
  int n = poll(&w, 1, wait_ms);
  int soerr = -1;
  socklen_t len = sizeof soerr;
  getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len);
  printf(n > 0 && soerr == 0 ? "connected\n" : "not connected\n");
  uint32_t mark = 0;
  len = sizeof mark;
  getsockopt(s, SOL_SOCKET, SO_MARK, &mark, &len);
  printf("mark %#x\n", mark);
  return 0;
}
