// game: a small side-scrolling 2D shooter on /dev/fb0, played with the keyboard (evdev).
//
// usage: game [SECONDS=20]
//
// A ship (sprite) flies over a landscape that scrolls right to left in three layers (stars,
// mountains, ground tiles); enemy sprites come in from the right on a fixed pseudo-random
// schedule. Arrow keys move the ship, space fires, q or Esc quits. The world advances in fixed
// steps of 1/30 s of CLOCK_MONOTONIC (guest) time; keys are read from every /dev/input/event*
// that has keys, non-blocking, before each step. Each step is drawn into a back buffer and copied
// to the framebuffer. Nothing depends on anything but the key events and the step count, so the
// same keys at the same guest times give the same screen.
//
// Console: `game: ready` once the input devices are open, `game: key CODE VALUE` per key event,
// `doppel-capture: game-final` with the last screen shown (held 0.3 s), then
// `game: done steps=N x=X y=Y score=S shots=F scroll=P`.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <linux/kd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STEP_HZ 30
#define MAX_ENEMIES 8
#define MAX_SHOTS 8

static uint32_t W, H;
static uint32_t *back;

static const char *ship_art[] = {
    "..cc............", "..cccc..........", "..ccwwc.........", "bbcccccccc......",
    "bbccccccccccyy..", "ooccccccccccccyy", "bbccccccccccyy..", "bbcccccccc......",
    "..ccwwc.........", "..cccc..........", "..cc............",
};
static const char *enemy_art[] = {
    "....mmmm....", "..mmmmmmmm..", ".mmwwmmwwmm.", "mmmwkmmwkmmm", "mmmmmmmmmmmm",
    ".mm.mmmm.mm.", "m..m....m..m", ".m........m.",
};

static uint32_t colour(char c) {
  switch (c) {
  case 'c': return 0x40c0ff;
  case 'w': return 0xffffff;
  case 'b': return 0x2060a0;
  case 'y': return 0xffe040;
  case 'o': return 0xff8020;
  case 'm': return 0xe040a0;
  case 'k': return 0x000000;
  case 'r': return 0xff3030;
  default: return 0xff000000u; // transparent
  }
}

// Draws ASCII art scaled by 2 with its top-left corner at (x, y), clipped to the screen.
static void sprite(const char **art, int rows, int x, int y) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; art[r][c]; c++) {
      uint32_t p = colour(art[r][c]);
      if (p & 0xff000000u) continue;
      for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
          int px = x + c * 2 + dx, py = y + r * 2 + dy;
          if (px >= 0 && py >= 0 && px < (int)W && py < (int)H) back[py * (int)W + px] = p;
        }
    }
}

static void rect(int x, int y, int w, int h, uint32_t p) {
  for (int j = y < 0 ? 0 : y; j < y + h && j < (int)H; j++)
    for (int i = x < 0 ? 0 : x; i < x + w && i < (int)W; i++) back[j * (int)W + i] = p;
}

static uint32_t hash32(uint32_t v) {
  v ^= v >> 16;
  v *= 0x7feb352du;
  v ^= v >> 15;
  v *= 0x846ca68bu;
  v ^= v >> 16;
  return v;
}

// Mountain height at world column wx: a sum of two triangle waves.
static int mountain(int wx) {
  int a = wx % 160, b = (wx + 57) % 96;
  a = a < 80 ? a : 160 - a;
  b = b < 48 ? b : 96 - b;
  return 40 + a + b / 2;
}

// 3x5 digits for the score.
static const char *digits[10] = {"111101101101111", "010110010010111", "111001111100111",
                                 "111001111001111", "101101111001001", "111100111001111",
                                 "111100111101111", "111001001001001", "111101111101111",
                                 "111101111001111"};

static void number(int x, int y, long v) {
  char s[24];
  int n = snprintf(s, sizeof s, "%ld", v);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 15; k++)
      if (digits[s[i] - '0'][k] == '1') rect(x + i * 16 + (k % 3) * 4, y + (k / 3) * 4, 4, 4, 0xffffff);
}

struct thing {
  int alive, x, y, vy;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 20;
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fbfd = open("/dev/fb0", O_RDWR | O_CLOEXEC);
  if (fbfd < 0) {
    printf("game: cannot open /dev/fb0: %s\n", strerror(errno));
    return 2;
  }
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  if (ioctl(fbfd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(fbfd, FBIOGET_FSCREENINFO, &fix) < 0 ||
      var.bits_per_pixel != 32) {
    printf("game: /dev/fb0 is not a 32-bit framebuffer\n");
    return 2;
  }
  W = var.xres;
  H = var.yres;
  uint8_t *fb = mmap(NULL, fix.smem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fbfd, 0);
  back = malloc((size_t)W * H * 4);
  if (fb == MAP_FAILED || !back) {
    printf("game: cannot map the framebuffer\n");
    return 1;
  }
  int tty = open("/dev/tty1", O_RDWR | O_CLOEXEC);
  if (tty >= 0) ioctl(tty, KDSETMODE, KD_GRAPHICS);

  // Every event device with keys.
  int inputs[8], ninputs = 0;
  DIR *d = opendir("/dev/input");
  struct dirent *e;
  while (d && (e = readdir(d)) && ninputs < 8) {
    if (strncmp(e->d_name, "event", 5) != 0) continue;
    char path[300];
    snprintf(path, sizeof path, "/dev/input/%s", e->d_name);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    unsigned long bits = 0;
    if (ioctl(fd, EVIOCGBIT(0, sizeof bits), &bits) >= 0 && (bits & (1ul << EV_KEY)))
      inputs[ninputs++] = fd;
    else
      close(fd);
  }
  if (d) closedir(d);
  printf("game: ready (%d input devices, %ux%u)\n", ninputs, W, H);

  int up = 0, down = 0, left = 0, right = 0, fire = 0, quit = 0;
  int sx = 60 * 256, sy = (int)H / 2 * 256; // ship position, 8.8 fixed point
  struct thing enemies[MAX_ENEMIES] = {0}, shots[MAX_SHOTS] = {0};
  long score = 0, nshots = 0, scroll = 0, step = 0;
  int cooldown = 0;
  double start = now_s();
  long steps_total = (long)(seconds * STEP_HZ);
  int ground = (int)H - 48;
  while (step < steps_total && !quit) {
    // Input.
    struct input_event ev;
    for (int i = 0; i < ninputs; i++)
      while (read(inputs[i], &ev, sizeof ev) == (ssize_t)sizeof ev) {
        if (ev.type != EV_KEY || ev.value == 2) continue;
        printf("game: key %u %d\n", ev.code, ev.value);
        int v = ev.value != 0;
        switch (ev.code) {
        case KEY_UP: up = v; break;
        case KEY_DOWN: down = v; break;
        case KEY_LEFT: left = v; break;
        case KEY_RIGHT: right = v; break;
        case KEY_SPACE: fire = v; break;
        case KEY_Q:
        case KEY_ESC: quit |= v; break;
        }
      }
    // World.
    sx += (right - left) * 3 * 256;
    sy += (down - up) * 3 * 256;
    if (sx < 0) sx = 0;
    if (sx > (int)(W - 40) * 256) sx = (int)(W - 40) * 256;
    if (sy < 24 * 256) sy = 24 * 256;
    if (sy > (ground - 24) * 256) sy = (ground - 24) * 256;
    if (cooldown > 0) cooldown--;
    if (fire && cooldown == 0)
      for (int i = 0; i < MAX_SHOTS; i++)
        if (!shots[i].alive) {
          shots[i] = (struct thing){1, sx / 256 + 32, sy / 256 + 10, 0};
          nshots++;
          cooldown = 6;
          break;
        }
    if (step % 20 == 0)
      for (int i = 0; i < MAX_ENEMIES; i++)
        if (!enemies[i].alive) {
          uint32_t r = hash32((uint32_t)step);
          enemies[i] = (struct thing){1, (int)W, 30 + (int)(r % (uint32_t)(ground - 80)),
                                      (int)(r >> 16) % 3 - 1};
          break;
        }
    for (int i = 0; i < MAX_SHOTS; i++)
      if (shots[i].alive && (shots[i].x += 8) > (int)W) shots[i].alive = 0;
    for (int i = 0; i < MAX_ENEMIES; i++) {
      struct thing *t = &enemies[i];
      if (!t->alive) continue;
      t->x -= 3;
      t->y += t->vy;
      if (t->y < 24 || t->y > ground - 20) t->vy = -t->vy;
      if (t->x < -24) t->alive = 0;
      for (int j = 0; j < MAX_SHOTS; j++)
        if (shots[j].alive && shots[j].x >= t->x && shots[j].x <= t->x + 24 &&
            shots[j].y >= t->y && shots[j].y <= t->y + 16) {
          t->alive = 0;
          shots[j].alive = 0;
          score += 10;
        }
    }
    scroll += 2;
    // Picture: sky, stars (1/4 speed), mountains (1/2 speed), ground tiles (full speed).
    for (uint32_t y = 0; y < H; y++) {
      uint32_t sky = (uint32_t)(8 + y / 8) << 8 | (uint32_t)(24 + y / 5);
      for (uint32_t x = 0; x < W; x++) back[y * W + x] = sky;
    }
    for (int i = 0; i < 60; i++) {
      uint32_t r = hash32((uint32_t)i + 1000);
      int x = (int)((r % (W + 64)) - (uint32_t)(scroll / 4) % (W + 64));
      if (x < 0) x += (int)W + 64;
      rect(x, (int)((r >> 12) % (uint32_t)(ground - 120)), 2, 2, 0xc0c0c0);
    }
    for (int x = 0; x < (int)W; x++) {
      int h = mountain(x + (int)(scroll / 2));
      for (int y = ground - h; y < ground; y++) back[y * (int)W + x] = 0x305030 + (uint32_t)((y & 7) << 8);
    }
    for (int x = 0; x < (int)W; x++) {
      int wx = x + (int)scroll;
      for (int y = ground; y < (int)H; y++)
        back[y * (int)W + x] = (((wx >> 4) + ((y - ground) >> 4)) & 1) ? 0x806040 : 0x604020;
    }
    for (int i = 0; i < MAX_ENEMIES; i++)
      if (enemies[i].alive) sprite(enemy_art, 8, enemies[i].x, enemies[i].y);
    for (int i = 0; i < MAX_SHOTS; i++)
      if (shots[i].alive) rect(shots[i].x, shots[i].y, 8, 3, 0xffff60);
    sprite(ship_art, 11, sx / 256, sy / 256);
    number(8, 8, score);
    for (uint32_t y = 0; y < H; y++) memcpy(fb + (size_t)y * fix.line_length, back + y * W, W * 4);
    step++;
    double due = start + (double)step / STEP_HZ;
    struct timespec ts = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
  }
  // The final screen: announced for a host capture, held, then the text console comes back.
  printf("doppel-capture: game-final\n");
  usleep(300000);
  if (tty >= 0) ioctl(tty, KDSETMODE, KD_TEXT);
  printf("game: done steps=%ld x=%d y=%d score=%ld shots=%ld scroll=%ld\n", step, sx / 256, sy / 256,
         score, nshots, scroll);
  return 0;
}
