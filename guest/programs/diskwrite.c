// diskwrite: writes a known 4096-byte block to a block device and reads it back.
//
// usage: diskwrite [SECTOR [DEVICE]]   (defaults: 0, /dev/vda)
//
// The block is the ASCII string "doppel-disk-test" followed by zero bytes up to 4096 bytes,
// written at byte offset SECTOR*512, then fsync'd. The block is read back with O_DIRECT (so the
// read reaches the device, not the page cache) and compared.
// Prints `diskwrite: wrote 4096 bytes at sector N of DEVICE, read back ok`; exit 1 on failure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 4096
static const char MAGIC[] = "doppel-disk-test";

int main(int argc, char **argv) {
  uint64_t sector = 0;
  const char *dev = "/dev/vda";
  if (argc > 1) {
    char *end = NULL;
    sector = strtoull(argv[1], &end, 0);
    if (end == argv[1] || *end != '\0') {
      fprintf(stderr, "diskwrite: bad sector '%s' (want a non-negative integer)\n", argv[1]);
      return 2;
    }
  }
  if (argc > 2) dev = argv[2];
  void *buf = NULL, *back = NULL;
  if (posix_memalign(&buf, BLOCK, BLOCK) || posix_memalign(&back, BLOCK, BLOCK)) {
    printf("diskwrite: out of memory\n");
    return 1;
  }
  memset(buf, 0, BLOCK);
  memcpy(buf, MAGIC, sizeof MAGIC - 1);
  off_t off = (off_t)(sector * 512u);

  int fd = open(dev, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    printf("diskwrite: cannot open %s: %s\n", dev, strerror(errno));
    return 1;
  }
  ssize_t n = pwrite(fd, buf, BLOCK, off);
  if (n != BLOCK) {
    printf("diskwrite: write at sector %" PRIu64 " of %s failed: %s\n", sector, dev,
           n < 0 ? strerror(errno) : "short write");
    return 1;
  }
  if (fsync(fd) != 0) {
    printf("diskwrite: fsync of %s failed: %s\n", dev, strerror(errno));
    return 1;
  }
  close(fd);

  fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    printf("diskwrite: cannot reopen %s with O_DIRECT: %s\n", dev, strerror(errno));
    return 1;
  }
  n = pread(fd, back, BLOCK, off);
  if (n != BLOCK) {
    printf("diskwrite: read back at sector %" PRIu64 " of %s failed: %s\n", sector, dev,
           n < 0 ? strerror(errno) : "short read");
    return 1;
  }
  close(fd);
  if (memcmp(buf, back, BLOCK) != 0) {
    printf("diskwrite: read back differs from what was written at sector %" PRIu64 "\n", sector);
    return 1;
  }
  printf("diskwrite: wrote %d bytes at sector %" PRIu64 " of %s, read back ok\n", BLOCK, sector, dev);
  return 0;
}
