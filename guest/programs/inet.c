// inet: receives data over a TCP connection in 4-byte chunks (the `inet` workload).
//
// usage: inet HOST PORT [BYTES]
//
// Connects to HOST:PORT (an IPv4 address, e.g. 10.0.2.2, the host under user-mode networking)
// and reads with read(fd, buf, 4) until the peer closes (or BYTES bytes have arrived, when given).
// Every read asks for 4 bytes, so a run makes about BYTES/4 system calls, as the benchmark of the
// same name in the record/replay literature does.
// Prints `inet: connected HOST:PORT`, then `inet: received N bytes in R reads fnv1a=0x... guest_ms=T`
// (FNV-1a 64 over the received bytes, so the host can check the data); exit 1 on an error.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end != '\0') return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: inet HOST PORT [BYTES]\n");
    return 2;
  }
  uint64_t port = 0, limit = UINT64_MAX;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "inet: bad IPv4 address '%s'\n", argv[1]);
    return 2;
  }
  if (parse_u64(argv[2], &port) || port == 0 || port > 65535) {
    fprintf(stderr, "inet: bad port '%s'\n", argv[2]);
    return 2;
  }
  if (argc == 4 && parse_u64(argv[3], &limit)) {
    fprintf(stderr, "inet: bad byte count '%s'\n", argv[3]);
    return 2;
  }
  sa.sin_port = htons((uint16_t)port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    printf("inet: cannot connect to %s:%s: %s\n", argv[1], argv[2], strerror(errno));
    return 1;
  }
  printf("inet: connected %s:%s\n", argv[1], argv[2]);
  fflush(stdout);
  uint64_t t0 = now_ms(), total = 0, reads = 0, h = 0xcbf29ce484222325u;
  unsigned char buf[4];
  while (total < limit) {
    size_t want = limit - total < 4 ? (size_t)(limit - total) : 4;
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      printf("inet: read failed after %" PRIu64 " bytes: %s\n", total, strerror(errno));
      return 1;
    }
    if (n == 0) break;
    reads++;
    for (ssize_t i = 0; i < n; i++) h = (h ^ buf[i]) * 0x100000001b3u;
    total += (uint64_t)n;
  }
  close(fd);
  printf("inet: received %" PRIu64 " bytes in %" PRIu64 " reads fnv1a=0x%016" PRIx64
         " guest_ms=%" PRIu64 "\n",
         total, reads, h, now_ms() - t0);
  return 0;
}
