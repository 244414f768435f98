/*
 * Test-only attacker for test/adversarial/decided-mark.test.ts (compiled there with gcc): sets a
 * socket's mark through the system calls a 64-bit x86 process can make as 32-bit ones (`int $0x80`,
 * no multilib needed), which the kernel does not pass to cgroup/setsockopt programs.
 *
 *   compat-mark probe                       prints "ia32" when 32-bit system calls work (else dies)
 *   compat-mark HOST PORT MARK HOW [MS [hold]]
 *                                           HOW: native, compat (setsockopt, i386 366) or
 *                                           socketcall (i386 102, SYS_SETSOCKOPT)
 * The second form connects without blocking to HOST:PORT (the connect programs see a miss and clear
 * the decided bit; the engine drops the SYN); with `hold` it prints "connecting" and waits for a
 * line on stdin. Then it sets SO_MARK to MARK the HOW way and prints "mark set" or "mark refused
 * ERRNO", then waits MS ms (default 3500) for a SYN sent again (after 1, 3, 7, 15 s) to connect:
 * "connected" or "not connected".
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
#include <sys/socket.h>
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
    fprintf(stderr, "usage: compat-mark probe | HOST PORT MARK native|compat|socketcall [MS [hold]]\n");
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
  return 0;
}
