// onet: sends data over a TCP connection in 4-byte chunks (the `onet` workload).
//
// usage: onet HOST PORT BYTES
//
// Connects to HOST:PORT and writes BYTES bytes with write(fd, buf, 4) (the last write shorter
// when BYTES is not a multiple of 4), then shuts the connection down and waits for the peer to
// close. Byte i of the stream is (i * 7 + i / 251) & 255, so the receiver can check every byte.
// Prints `onet: connected HOST:PORT`, then
// `onet: sent N bytes in W writes guest_ms=T`; exit 1 on an error.
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
  if (argc != 4) {
    fprintf(stderr, "usage: onet HOST PORT BYTES\n");
    return 2;
  }
  uint64_t port = 0, bytes = 0;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "onet: bad IPv4 address '%s'\n", argv[1]);
    return 2;
  }
  if (parse_u64(argv[2], &port) || port == 0 || port > 65535) {
    fprintf(stderr, "onet: bad port '%s'\n", argv[2]);
    return 2;
  }
  if (parse_u64(argv[3], &bytes)) {
    fprintf(stderr, "onet: bad byte count '%s'\n", argv[3]);
    return 2;
  }
  sa.sin_port = htons((uint16_t)port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    printf("onet: cannot connect to %s:%s: %s\n", argv[1], argv[2], strerror(errno));
    return 1;
  }
  printf("onet: connected %s:%s\n", argv[1], argv[2]);
  fflush(stdout);
  uint64_t t0 = now_ms(), sent = 0, writes = 0;
  unsigned char buf[4];
  while (sent < bytes) {
    size_t len = bytes - sent < 4 ? (size_t)(bytes - sent) : 4;
    for (size_t i = 0; i < len; i++) {
      uint64_t at = sent + i;
      buf[i] = (unsigned char)((at * 7u + at / 251u) & 255u);
    }
    size_t off = 0;
    while (off < len) {
      ssize_t n = write(fd, buf + off, len - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        printf("onet: write failed after %" PRIu64 " bytes: %s\n", sent + off, strerror(errno));
        return 1;
      }
      off += (size_t)n;
      writes++;
    }
    sent += len;
  }
  // Half-close, then wait for the peer's close so every byte has left before we report.
  shutdown(fd, SHUT_WR);
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
  printf("onet: sent %" PRIu64 " bytes in %" PRIu64 " writes guest_ms=%" PRIu64 "\n", sent, writes,
         now_ms() - t0);
  return 0;
}
