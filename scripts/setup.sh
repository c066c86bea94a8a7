#!/usr/bin/env bash
# Installs what a fresh machine lacks, idempotently: Debian packages for the guest build, the
# anchors (QEMU, OpenSBI) and the test tools. Safe to run again; does nothing when all is there.
set -euo pipefail

packages=(
  # guest build (guest/build.sh)
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross linux-source-6.1
  bc flex bison libssl-dev libelf-dev cpio device-tree-compiler
  dpkg-dev xz-utils make gcc libc6-dev python3 # apt-get source busybox, host tools, test harness
  # anchors for benchmarks and cross-checks
  qemu-system-misc opensbi socat
  # RFB interop tests (crates/rfb/tests/interop.rs): real viewers under a virtual X display
  tigervnc-viewer xvfb x11-apps imagemagick python3-venv
  # noVNC tests (crates/doppel/tests/vnc_*.rs): Debian's noVNC in Debian's headless Chromium
  novnc chromium
  # netem's namespace tests (crates/netem/tests/tun_netns.rs)
  iproute2 iputils-ping
  # guest networking: libslirp for `--net user` (crates/host/src/net/slirp.rs links -lslirp)
  libslirp-dev
  # record/replay figures (crates/replay/tests/figures.rs makes an ext2 image with mke2fs -d)
  e2fsprogs
  # placement: HiGHS ILP solver built from source (highs-sys: cmake + bindgen), plot conversion
  cmake libclang-dev librsvg2-bin
  # guest workloads (guest/build.sh): videos made by the host ffmpeg, the ext2 workload disk
  ffmpeg e2fsprogs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# vncdotool (PyPI) for the RFB interop tests, in a venv under the cache dir.
vnc_venv="${DOPPEL_CACHE:-$HOME/.cache/doppel}/venv-vncdotool"
if [ ! -x "$vnc_venv/bin/vncdo" ]; then
  echo "setup: installing vncdotool into $vnc_venv"
  python3 -m venv "$vnc_venv"
  "$vnc_venv/bin/pip" install -q vncdotool
else
  echo "setup: vncdotool present"
fi

# noVNC's npm release and playwright-core (drives Debian's chromium; Playwright's own browser
# download is not used) for the noVNC tests, in a node_modules under the cache dir.
node_dir="${DOPPEL_CACHE:-$HOME/.cache/doppel}/node-vnc"
if [ ! -d "$node_dir/node_modules/@novnc/novnc" ] || [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  echo "setup: installing @novnc/novnc and playwright-core into $node_dir"
  mkdir -p "$node_dir"
  (cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
  (cd "$node_dir" && npm install --silent --no-audit --no-fund @novnc/novnc playwright-core)
else
  echo "setup: @novnc/novnc and playwright-core present"
fi
