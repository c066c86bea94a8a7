// fpuloop: a floating-point benchmark with an exactly known instruction count.
//
// usage: fpuloop [ITERATIONS]   (default 10000000, i.e. 10^8 loop instructions)
//
// 10 instructions per iteration, 8 of them double-precision F/D operations (fused multiply-add,
// multiply, add, divide, subtract, square root, fused multiply-subtract), all in the dynamic
// rounding mode (round to nearest even). Markers as in cpuloop. The result (the XOR of the bit
// patterns of the five accumulators) is reproduced on the host by guest/tools/reference.py,
// so it checks an emulator's floating point bit for bit.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INSNS_PER_ITER 10

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

int main(int argc, char **argv) {
  uint64_t iters = 10000000u;
  if (argc > 1) {
    char *end = NULL;
    iters = strtoull(argv[1], &end, 0);
    if (end == argv[1] || *end != '\0' || iters == 0) {
      fprintf(stderr, "fpuloop: bad iteration count '%s' (want a positive integer)\n", argv[1]);
      return 2;
    }
  }
  double x = 1.0, s = 0.0, t = 0.0, u = 0.0, v = 0.0;
  const double a = 0.999, b = 0.5, c = 3.0;
  uint64_t n = iters;
  printf("fpuloop: start iterations=%" PRIu64 " instructions=%" PRIu64 "\n", iters,
         iters * INSNS_PER_ITER);
  fflush(stdout);
  uint64_t t0 = now_ns();
  __asm__ volatile("1:\n"
                   "  fmadd.d %[x], %[x], %[a], %[b]\n" // x = x*a + b
                   "  fmul.d  ft0, %[x], %[x]\n"
                   "  fadd.d  %[s], %[s], ft0\n"         // s += x*x
                   "  fdiv.d  ft1, %[x], %[c]\n"
                   "  fsub.d  %[t], %[t], ft1\n"         // t -= x/c
                   "  fsqrt.d ft2, %[s]\n"
                   "  fadd.d  %[u], %[u], ft2\n"         // u += sqrt(s)
                   "  fmsub.d %[v], %[x], %[c], %[v]\n"  // v = x*c - v
                   "  addi    %[n], %[n], -1\n"
                   "  bnez    %[n], 1b\n"
                   : [x] "+f"(x), [s] "+f"(s), [t] "+f"(t), [u] "+f"(u), [v] "+f"(v),
                     [n] "+r"(n)
                   : [a] "f"(a), [b] "f"(b), [c] "f"(c)
                   : "ft0", "ft1", "ft2");
  uint64_t ns = now_ns() - t0;
  printf("fpuloop: done instructions=%" PRIu64 " result=0x%016" PRIx64 " guest_ns=%" PRIu64
         " guest_mips=%.1f\n",
         iters * INSNS_PER_ITER, bits(x) ^ bits(s) ^ bits(t) ^ bits(u) ^ bits(v), ns,
         ns ? (double)(iters * INSNS_PER_ITER) * 1000.0 / (double)ns : 0.0);
  fflush(stdout);
  return 0;
}
