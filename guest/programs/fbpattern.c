// fbpattern: draws a known deterministic pattern on a Linux framebuffer.
//
// usage: fbpattern [DEVICE]   (default /dev/fb0)
//
// Pixel (x, y) gets R = x & 255, G = y & 255, B = (x ^ y) & 255, packed as the framebuffer's
// own colour layout says (x8r8g8b8 gives 0x00RRGGBB; 16-bit layouts keep each channel's top
// bits). Only the visible xres x yres area at offset 0 is drawn, row stride = line_length.
// Prints `fbpattern: mode WxH bpp=B stride=S ...` then `fbpattern: done WxH`.
// Exit status 2 when the device is missing (clear message), 1 on other failures.
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/kd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static uint32_t channel(uint32_t value8, const struct fb_bitfield *f) {
  if (f->length == 0) return 0;
  uint32_t v = f->length >= 8 ? value8 << (f->length - 8) : value8 >> (8 - f->length);
  return v << f->offset;
}

int main(int argc, char **argv) {
  const char *dev = argc > 1 ? argv[1] : "/dev/fb0";
  int fd = open(dev, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    printf("fbpattern: cannot open %s: %s (no framebuffer device)\n", dev, strerror(errno));
    return 2;
  }
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  if (ioctl(fd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &fix) < 0) {
    printf("fbpattern: cannot read the geometry of %s: %s\n", dev, strerror(errno));
    return 1;
  }
  // The text console (fbcon) shares the framebuffer: switch it to graphics mode so its cursor
  // and text do not draw over the pattern. The mode stays after we exit. Not fatal.
  int tty = open("/dev/tty0", O_RDWR | O_CLOEXEC);
  if (tty >= 0) {
    ioctl(tty, KDSETMODE, KD_GRAPHICS);
    close(tty);
  }
  // DRM's fbdev emulation only enables its output once a mode is set; simplefb accepts the
  // unchanged mode. A failure here is not fatal.
  var.activate = FB_ACTIVATE_NOW;
  if (ioctl(fd, FBIOPUT_VSCREENINFO, &var) < 0)
    printf("fbpattern: note: FBIOPUT_VSCREENINFO: %s (continuing)\n", strerror(errno));
  uint32_t w = var.xres, h = var.yres, bpp = var.bits_per_pixel, stride = fix.line_length;
  printf("fbpattern: mode %ux%u bpp=%u stride=%u red=%u/%u green=%u/%u blue=%u/%u id=\"%.16s\"\n",
         w, h, bpp, stride, var.red.offset, var.red.length, var.green.offset, var.green.length,
         var.blue.offset, var.blue.length, fix.id);
  if (bpp != 32 && bpp != 16) {
    printf("fbpattern: unsupported %u bits per pixel (want 32 or 16)\n", bpp);
    return 1;
  }
  if ((uint64_t)stride * h > fix.smem_len || (uint64_t)w * (bpp / 8) > stride) {
    printf("fbpattern: inconsistent geometry: stride %u x %u rows > %u bytes of memory\n", stride,
           h, fix.smem_len);
    return 1;
  }
  size_t len = fix.smem_len;
  uint8_t *fb = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (fb == MAP_FAILED) {
    printf("fbpattern: cannot mmap %zu bytes of %s: %s\n", len, dev, strerror(errno));
    return 1;
  }
  for (uint32_t y = 0; y < h; y++) {
    uint8_t *row = fb + (size_t)y * stride;
    for (uint32_t x = 0; x < w; x++) {
      uint32_t p = channel(x & 255u, &var.red) | channel(y & 255u, &var.green) |
                   channel((x ^ y) & 255u, &var.blue);
      if (bpp == 32)
        memcpy(row + (size_t)x * 4, &p, 4);
      else {
        uint16_t q = (uint16_t)p;
        memcpy(row + (size_t)x * 2, &q, 2);
      }
    }
  }
  msync(fb, len, MS_SYNC);
  munmap(fb, len);
  close(fd);
  printf("fbpattern: done %ux%u\n", w, h);
  return 0;
}
