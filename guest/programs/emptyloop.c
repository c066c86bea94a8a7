// emptyloop: a CPU loop that does nothing useful for SECONDS of guest time.
//
// usage: emptyloop [SECONDS=10]
//
// Spins in blocks of 2^20 iterations of an empty counting loop (the compiler keeps it: the
// counter is volatile), reading CLOCK_MONOTONIC between blocks, until SECONDS have passed.
// Prints `emptyloop: done iterations=N seconds=T`.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  volatile unsigned long counter = 0;
  double start = now_s(), t = start;
  while (t - start < seconds) {
    for (unsigned long i = 0; i < (1ul << 20); i++) counter = counter + 1;
    t = now_s();
  }
  printf("emptyloop: done iterations=%lu seconds=%.3f\n", (unsigned long)counter, t - start);
  return 0;
}
