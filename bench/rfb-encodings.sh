#!/usr/bin/env bash
# doppel's RFB encodings on four desktop scenarios (static, typing, scrolling text, full-screen
# animation): bytes/s, updates/s, encoding time and PSNR per encoding, replayed through the real
# session (damage tracking, CopyRect move detection, encoders, lossless refresh) by
# crates/rfb/examples/rfb_bench.rs. Arguments go to the bench, e.g.
#   bench/rfb-encodings.sh --size 1280x800 --fps 12 --seconds 4 [--encodings zrle,h264-q6]
#
# The QEMU side of the comparison (QEMU 7.2's VNC server showing the same guest) is NOT run here:
# the cached guest kernel has only simplefb (no DRM, bochs, virtio-gpu or fbcon), and QEMU's
# riscv64 virt machine cannot present a simple-framebuffer to its VNC server (ramfb needs
# firmware to set it up). See docs/benchmarks.md, RFB section.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --quiet --profile test -p doppel-rfb --features test-utils --example rfb_bench -- "$@"
