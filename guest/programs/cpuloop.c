// cpuloop: a CPU-bound benchmark with an exactly known instruction count.
//
// usage: cpuloop [ITERATIONS]   (default 100000000, i.e. 10^9 loop instructions)
//
// The loop is written in assembly so the count does not depend on the compiler: 10 integer
// instructions per iteration (xorshift64, a multiply, an add, the counter and the branch).
// Prints `cpuloop: start ...` before and `cpuloop: done ...` after the loop, so a host can time
// the loop alone from the console; the result is printed so the work cannot be optimised away.
// guest/tools/reference.py computes the same result on the host.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define INSNS_PER_ITER 10

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  uint64_t iters = 100000000u;
  if (argc > 1) {
    char *end = NULL;
    iters = strtoull(argv[1], &end, 0);
    if (end == argv[1] || *end != '\0' || iters == 0) {
      fprintf(stderr, "cpuloop: bad iteration count '%s' (want a positive integer)\n", argv[1]);
      return 2;
    }
  }
  uint64_t x = 0x9E3779B97F4A7C15u, acc = 0, n = iters;
  const uint64_t k = 0xD1B54A32D192ED03u;
  printf("cpuloop: start iterations=%" PRIu64 " instructions=%" PRIu64 "\n", iters,
         iters * INSNS_PER_ITER);
  fflush(stdout);
  uint64_t t0 = now_ns();
  __asm__ volatile("1:\n"
                   "  slli t0, %[x], 13\n"
                   "  xor  %[x], %[x], t0\n"
                   "  srli t0, %[x], 7\n"
                   "  xor  %[x], %[x], t0\n"
                   "  slli t0, %[x], 17\n"
                   "  xor  %[x], %[x], t0\n"
                   "  mul  t1, %[x], %[k]\n"
                   "  add  %[acc], %[acc], t1\n"
                   "  addi %[n], %[n], -1\n"
                   "  bnez %[n], 1b\n"
                   : [x] "+r"(x), [acc] "+r"(acc), [n] "+r"(n)
                   : [k] "r"(k)
                   : "t0", "t1");
  uint64_t ns = now_ns() - t0;
  printf("cpuloop: done instructions=%" PRIu64 " result=0x%016" PRIx64 " guest_ns=%" PRIu64
         " guest_mips=%.1f\n",
         iters * INSNS_PER_ITER, x ^ acc, ns,
         ns ? (double)(iters * INSNS_PER_ITER) * 1000.0 / (double)ns : 0.0);
  fflush(stdout);
  return 0;
}
