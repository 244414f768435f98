/*
 * Probe (issue 12, goals 2 and 6): what one system call, or one sleep, costs the code that runs
 * after it, page by page. A pointer chase visits one cache line in each of PAGES pages in a random
 * order (every line stays in the CPU's caches between rounds: PAGES * 64 bytes); each round runs
 * back to back, after a getppid() system call, or after a 1 us sleep. Where the kernel isolates its
 * page tables (PTI) and the CPU has no PCID, every entry into the kernel empties the TLB: each page
 * the next round touches then costs a page walk, and the rounds after a system call are slower by
 * that walk per page. Where PCID is present (or no PTI), the three rows are about the same.
 * The machine's side: /sys/devices/system/cpu/vulnerabilities/meltdown, the pcid flag in
 * /proc/cpuinfo.
 * Build and run: gcc -O2 -o /tmp/tlb-probe bench/tlb-probe.c && /tmp/tlb-probe 64 512 2048
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static void probe(int pages) {
  size_t size = (size_t)pages * 4096;
  char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  madvise(m, size, MADV_NOHUGEPAGE); /* 4 KiB pages: one TLB entry each */
  int *order = malloc(pages * sizeof(int));
  for (int i = 0; i < pages; i++) order[i] = i;
  srand(1);
  for (int i = pages - 1; i > 0; i--) {
    int j = rand() % (i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  /* One line per page, at an offset that varies with the page so the lines spread over the cache's sets. */
  for (int i = 0; i < pages; i++) {
    int a = order[i], b = order[(i + 1) % pages];
    *(size_t *)(m + (size_t)a * 4096 + (a % 64) * 64) = (size_t)b * 4096 + (b % 64) * 64;
  }
  const char *names[] = {"back to back", "after a system call", "after a 1 us sleep"};
  size_t at = (size_t)order[0] * 4096 + (order[0] % 64) * 64;
  const int rounds = 300;
  for (int mode = 0; mode < 3; mode++) {
    double total = 0;
    for (int r = 0; r < rounds; r++) {
      if (mode == 1) syscall(SYS_getppid);
      if (mode == 2) usleep(1);
      double t0 = now_ns();
      for (int p = 0; p < pages; p++) at = *(size_t *)(m + at);
      total += now_ns() - t0;
    }
    printf("%5d pages, %-20s %5.1f ns a page\n", pages, names[mode], total / rounds / pages);
  }
  if (at == 1) puts(""); /* keeps the chase */
  munmap(m, size);
  free(order);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PAGES...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) probe(atoi(argv[i]));
  return 0;
}
