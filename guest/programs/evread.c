// evread: prints input events from every /dev/input/event* device.
//
// usage: evread [COUNT]   (default 4) exits after COUNT printed events
//
// Output, one line each:
//   evread: open PATH name="DEVICE NAME"     per device opened
//   evread: ready                            all devices open; inject events now
//   key CODE VALUE                           EV_KEY, keyboard keys (CODE < BTN_MISC)
//   btn CODE VALUE                           EV_KEY, buttons (CODE >= BTN_MISC, e.g. BTN_LEFT 272)
//   abs CODE VALUE                           EV_ABS (tablet: ABS_X 0, ABS_Y 1)
//   rel CODE VALUE                           EV_REL
//   evread: done COUNT
// EV_SYN and EV_MSC are not printed and not counted. Exit status 2 when no device exists.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MAX_DEVICES 32

static int is_event_node(const struct dirent *d) { return strncmp(d->d_name, "event", 5) == 0; }

int main(int argc, char **argv) {
  long want = 4;
  if (argc > 1) {
    char *end = NULL;
    want = strtol(argv[1], &end, 0);
    if (end == argv[1] || *end != '\0' || want <= 0) {
      fprintf(stderr, "evread: bad event count '%s' (want a positive integer)\n", argv[1]);
      return 2;
    }
  }
  struct dirent **names = NULL;
  int found = scandir("/dev/input", &names, is_event_node, versionsort);
  if (found <= 0) {
    printf("evread: no /dev/input/event* devices (%s)\n", found < 0 ? strerror(errno) : "none");
    return 2;
  }
  struct pollfd fds[MAX_DEVICES];
  int nfds = 0;
  for (int i = 0; i < found; i++) {
    char path[300];
    snprintf(path, sizeof path, "/dev/input/%s", names[i]->d_name);
    free(names[i]);
    if (nfds == MAX_DEVICES) continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      printf("evread: cannot open %s: %s\n", path, strerror(errno));
      continue;
    }
    char name[128] = "?";
    if (ioctl(fd, EVIOCGNAME(sizeof name - 1), name) < 0) strcpy(name, "?");
    printf("evread: open %s name=\"%s\"\n", path, name);
    fds[nfds].fd = fd;
    fds[nfds].events = POLLIN;
    nfds++;
  }
  free(names);
  if (nfds == 0) {
    printf("evread: no input device could be opened\n");
    return 2;
  }
  printf("evread: ready\n");
  fflush(stdout);
  long seen = 0;
  while (seen < want) {
    if (poll(fds, (nfds_t)nfds, -1) < 0) {
      if (errno == EINTR) continue;
      printf("evread: poll failed: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < nfds && seen < want; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      struct input_event ev[16];
      ssize_t got = read(fds[i].fd, ev, sizeof ev);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        printf("evread: read failed: %s\n", strerror(errno));
        return 1;
      }
      for (size_t j = 0; j < (size_t)got / sizeof ev[0] && seen < want; j++) {
        const char *kind = NULL;
        switch (ev[j].type) {
          case EV_KEY: kind = ev[j].code < BTN_MISC ? "key" : "btn"; break;
          case EV_ABS: kind = "abs"; break;
          case EV_REL: kind = "rel"; break;
          default: break;
        }
        if (!kind) continue;
        printf("%s %u %d\n", kind, (unsigned)ev[j].code, (int)ev[j].value);
        fflush(stdout);
        seen++;
      }
    }
  }
  printf("evread: done %ld\n", seen);
  return 0;
}
