// player: plays an MPEG-1 video elementary stream on the framebuffer at its own frame rate.
// link: -lavcodec -lavutil -lm
//
// usage: player [-v] [-n MAXFRAMES] FILE|-
//
// The stream is split into packets by libavcodec's mpegvideo parser and decoded by its
// mpeg1video decoder (Debian's ffmpeg source, cross-built by guest/build.sh with only those two
// components). `-` reads standard input, so a stream can come from anywhere
// (`wget -O - http://host/v.m1v | player -`). Frames are converted from YUV 4:2:0 to RGB with the
// integer BT.601 limited-range formula below (chroma sample (x/2, y/2) for pixel (x, y)) and drawn
// centred on /dev/fb0.
//
// Timing: frame i is due at start + i / frame_rate (CLOCK_MONOTONIC, guest time). A frame decoded
// before its time waits for it; a frame decoded more than one frame period late is dropped (not
// drawn; decoding goes on, the stream's P and B frames need it).
//
// Console: `player: stream WxH RATE fps`, with -v `doppel-capture: frame-NNNNN` right after frame
// NNNNN (0-based decode order of output frames) is on the screen, and at the end
// `player: done frames=N shown=S dropped=D seconds=T fps=F` (fps = shown / seconds).
// While playing, the text console (fbcon on tty1) is put in graphics mode so it does not draw.
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/kd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static uint8_t clip8(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

// Lookup tables for the BT.601 limited-range conversion:
// R = (298 (Y-16) + 409 (V-128) + 128) >> 8
// G = (298 (Y-16) - 100 (U-128) - 208 (V-128) + 128) >> 8
// B = (298 (Y-16) + 516 (U-128) + 128) >> 8
static int ty[256], trv[256], tgu[256], tgv[256], tbu[256];

static void init_tables(void) {
  for (int i = 0; i < 256; i++) {
    ty[i] = 298 * (i - 16) + 128;
    trv[i] = 409 * (i - 128);
    tgu[i] = -100 * (i - 128);
    tgv[i] = -208 * (i - 128);
    tbu[i] = 516 * (i - 128);
  }
}

struct screen {
  uint8_t *mem;
  uint32_t width, height, stride;
  size_t len;
};

static void draw(const struct screen *s, const AVFrame *f) {
  int w = f->width < (int)s->width ? f->width : (int)s->width;
  int h = f->height < (int)s->height ? f->height : (int)s->height;
  int x0 = ((int)s->width - w) / 2, y0 = ((int)s->height - h) / 2;
  for (int y = 0; y < h; y++) {
    const uint8_t *yr = f->data[0] + (size_t)y * (size_t)f->linesize[0];
    const uint8_t *ur = f->data[1] + (size_t)(y / 2) * (size_t)f->linesize[1];
    const uint8_t *vr = f->data[2] + (size_t)(y / 2) * (size_t)f->linesize[2];
    uint32_t *out = (uint32_t *)(s->mem + (size_t)(y0 + y) * s->stride) + x0;
    for (int x = 0; x < w; x += 2) {
      int u = ur[x / 2], v = vr[x / 2];
      int r = trv[v], g = tgu[u] + tgv[v], b = tbu[u];
      for (int k = 0; k < 2 && x + k < w; k++) {
        int l = ty[yr[x + k]];
        out[x + k] = (uint32_t)clip8((l + r) >> 8) << 16 | (uint32_t)clip8((l + g) >> 8) << 8 |
                     clip8((l + b) >> 8);
      }
    }
  }
}

static int open_screen(struct screen *s) {
  int fd = open("/dev/fb0", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    printf("player: cannot open /dev/fb0: %s\n", strerror(errno));
    return -1;
  }
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  if (ioctl(fd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &fix) < 0 ||
      var.bits_per_pixel != 32) {
    printf("player: /dev/fb0 is not a 32-bit framebuffer\n");
    return -1;
  }
  s->width = var.xres;
  s->height = var.yres;
  s->stride = fix.line_length;
  s->len = fix.smem_len;
  s->mem = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (s->mem == MAP_FAILED) {
    printf("player: cannot mmap /dev/fb0: %s\n", strerror(errno));
    return -1;
  }
  memset(s->mem, 0, (size_t)s->stride * s->height);
  return 0;
}

int main(int argc, char **argv) {
  int verbose = 0;
  long max_frames = -1;
  int opt;
  while ((opt = getopt(argc, argv, "vn:")) != -1) {
    if (opt == 'v')
      verbose = 1;
    else if (opt == 'n')
      max_frames = strtol(optarg, NULL, 10);
    else {
      fprintf(stderr, "usage: player [-v] [-n MAXFRAMES] FILE|-\n");
      return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "usage: player [-v] [-n MAXFRAMES] FILE|-\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *path = argv[optind];
  int in = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    printf("player: cannot open %s: %s\n", path, strerror(errno));
    return 2;
  }
  struct screen scr;
  if (open_screen(&scr) < 0) return 2;
  int tty = open("/dev/tty1", O_RDWR | O_CLOEXEC);
  if (tty >= 0) ioctl(tty, KDSETMODE, KD_GRAPHICS);
  init_tables();

  const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_MPEG1VIDEO);
  AVCodecParserContext *parser = av_parser_init(AV_CODEC_ID_MPEG1VIDEO);
  AVCodecContext *ctx = codec ? avcodec_alloc_context3(codec) : NULL;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *frame = av_frame_alloc();
  if (!codec || !parser || !ctx || !pkt || !frame) {
    printf("player: libavcodec has no mpeg1video decoder or parser\n");
    return 1;
  }
  ctx->thread_count = 1;
  if (avcodec_open2(ctx, codec, NULL) < 0) {
    printf("player: cannot open the decoder\n");
    return 1;
  }

  static uint8_t buf[65536 + AV_INPUT_BUFFER_PADDING_SIZE];
  long frames = 0, shown = 0, dropped = 0;
  double start = 0, period = 0;
  int eof = 0, done = 0, rc = 0;
  while (!done) {
    ssize_t n = 0;
    if (!eof) {
      n = read(in, buf, 65536);
      if (n < 0) {
        if (errno == EINTR) continue;
        printf("player: read error: %s\n", strerror(errno));
        rc = 1;
        break;
      }
      if (n == 0) eof = 1;
    }
    memset(buf + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    const uint8_t *p = buf;
    int left = (int)n;
    // At end of stream, one call with no data flushes the parser's last packet.
    do {
      int used = av_parser_parse2(parser, ctx, &pkt->data, &pkt->size, p, left, AV_NOPTS_VALUE,
                                  AV_NOPTS_VALUE, 0);
      if (used < 0) {
        printf("player: parser error\n");
        rc = 1;
        done = 1;
        break;
      }
      p += used;
      left -= used;
      int flush = eof && pkt->size == 0;
      if (pkt->size == 0 && !flush) continue;
      int err = flush ? avcodec_send_packet(ctx, NULL) : avcodec_send_packet(ctx, pkt);
      if (err < 0 && err != AVERROR_EOF) {
        printf("player: decoding error %d at frame %ld\n", err, frames);
        rc = 1;
        done = 1;
        break;
      }
      while (avcodec_receive_frame(ctx, frame) == 0) {
        if (frames == 0) {
          AVRational r = ctx->framerate;
          double fps = r.num > 0 && r.den > 0 ? (double)r.num / r.den : 25.0;
          period = 1.0 / fps;
          printf("player: stream %dx%d %.3f fps\n", frame->width, frame->height, fps);
          start = now_s();
        }
        double due = start + (double)frames * period;
        if (now_s() > due + period) {
          dropped++;
        } else {
          sleep_until(due);
          draw(&scr, frame);
          shown++;
          if (verbose) printf("doppel-capture: frame-%05ld\n", frames);
        }
        frames++;
        if (max_frames >= 0 && frames >= max_frames) {
          done = 1;
          break;
        }
      }
      if (flush) done = 1;
    } while (left > 0 && !done);
  }
  // The last frame stays on the screen for its whole period.
  if (frames > 0) sleep_until(start + (double)frames * period);
  double seconds = frames > 0 ? now_s() - start : 0;
  printf("player: done frames=%ld shown=%ld dropped=%ld seconds=%.3f fps=%.2f\n", frames, shown,
         dropped, seconds, seconds > 0 ? (double)shown / seconds : 0.0);
  printf("doppel-capture: player-final\n");
  usleep(300000);
  if (tty >= 0) ioctl(tty, KDSETMODE, KD_TEXT);
  avcodec_free_context(&ctx);
  av_parser_close(parser);
  av_frame_free(&frame);
  av_packet_free(&pkt);
  return rc;
}
