#!/usr/bin/env bash
# Builds doppel's guest: a Linux `Image` from Debian's linux-source-6.1 (tinyconfig plus
# guest/kernel.config), a static busybox from Debian's busybox source package, small static test
# programs (guest/programs/) and a reproducible initramfs with guest/init as /init.
#
# Outputs go to ${DOPPEL_CACHE:-$HOME/.cache/doppel}/guest/<hash>/, where <hash> covers every
# input (this script, the config fragments, /init, the programs' sources and the Debian package
# versions of the kernel source, busybox source, cross compiler and cross libc). With unchanged
# inputs a second run only prints the paths. `${DOPPEL_CACHE}/guest/current` points at the latest.
#
# stdout carries only `kernel=...`, `initramfs=...` (and a few more key=value lines), so callers
# can `eval "$(guest/build.sh)"`; progress and errors go to stderr.
#
# Options: --force (rebuild even if the output exists), --print-hash (print the input hash, exit).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache_root="${DOPPEL_CACHE:-$HOME/.cache/doppel}"
cache="$cache_root/guest"
jobs="${DOPPEL_JOBS:-$(nproc)}"
cross=riscv64-linux-gnu-

# Fixed identity so two builds of the same inputs are byte-identical.
epoch=1672531200 # 2023-01-01 00:00:00 UTC
export SOURCE_DATE_EPOCH=$epoch
export KBUILD_BUILD_TIMESTAMP="Sun Jan  1 00:00:00 UTC 2023"
export KBUILD_BUILD_USER=doppel KBUILD_BUILD_HOST=doppel KBUILD_BUILD_VERSION=1
export LC_ALL=C TZ=UTC

force=0 print_hash=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print-hash) print_hash=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "guest/build.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'guest: %s\n' "$*" >&2; }
die() { printf 'guest: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Setup: Debian packages (scripts/setup.sh) and a deb-src line for `apt-get source`.

# What this build needs (a subset of scripts/setup.sh's list). One dpkg-query answers both "is
# everything installed" and the versions that go into the hash; setup.sh runs only when needed.
needed=(gcc-riscv64-linux-gnu libc6-dev-riscv64-cross linux-source-6.1 bc flex bison libssl-dev
  libelf-dev cpio dpkg-dev xz-utils make gcc libc6-dev)
# The workloads: host ffmpeg makes the videos, e2fsprogs the disk image (workloads.img).
needed+=(ffmpeg e2fsprogs)
declare -A pkgver=()
query_packages() {
  pkgver=()
  local p v st
  while read -r p v st; do
    [ "$st" = ii ] && pkgver[$p]="$v"
  done < <(dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' "${needed[@]}" 2>/dev/null || true)
}
query_packages
if ((${#pkgver[@]} != ${#needed[@]})); then
  bash "$repo/scripts/setup.sh" >&2
  query_packages
fi

# A `deb-src` entry for the machine's Debian release, in its own file. A plain line in
# sources.list conflicts with the existing deb822 entry's Signed-By, so name the keyring here too.
ensure_deb_src() {
  local list=/etc/apt/sources.list.d/doppel-deb-src.list
  [ -f "$list" ] && return 0
  if grep -rqsE '^(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local codename uri
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")"
  uri="$(awk '/^URIs:/ && !u { u = $2 } END { print u }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  if [ -z "$uri" ]; then
    uri="$(awk -v c="$codename" '$1 == "deb" && $0 ~ c { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [ -n "$uri" ] || die "cannot find the Debian mirror URI in /etc/apt/sources.list{,.d/debian.sources}"
  say "adding deb-src for $codename from $uri ($list)"
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $codename main" |
    "${sudo_cmd[@]}" tee "$list" >/dev/null
  "${sudo_cmd[@]}" apt-get update -qq >&2
}
ensure_deb_src

pkg_version() {
  [ -n "${pkgver[$1]:-}" ] || die "Debian package $1 is not installed (scripts/setup.sh should have installed it)"
  echo "${pkgver[$1]}"
}
linux_version="$(pkg_version linux-source-6.1)"
gcc_version="$(pkg_version gcc-riscv64-linux-gnu)"
libc_version="$(pkg_version libc6-dev-riscv64-cross)"
# The busybox source version apt would fetch (highest of the configured deb-src entries),
# remembered until apt's source lists change (apt-cache takes a noticeable fraction of a second).
mkdir -p "$cache"
lists_stamp="$(stat -c '%n %Y' /var/lib/apt/lists/*Sources* 2>/dev/null || true)"
busybox_version=""
if [ -f "$cache/.busybox-src-version" ] && [ -n "$lists_stamp" ]; then
  { IFS= read -r cached_version; cached_stamp="$(cat)"; } <"$cache/.busybox-src-version"
  [ "$cached_stamp" = "$lists_stamp" ] && busybox_version="$cached_version"
fi
if [ -z "$busybox_version" ]; then
  busybox_version="$(apt-cache showsrc --only-source busybox 2>/dev/null | awk '/^Version:/ { print $2 }' |
    sort -V | tail -n 1)"
  [ -n "$busybox_version" ] && printf '%s\n%s\n' "$busybox_version" "$lists_stamp" >"$cache/.busybox-src-version"
fi
[ -n "$busybox_version" ] || die "apt-cache knows no busybox source package (is the deb-src line in place? try apt-get update)"
# The ffmpeg source apt would fetch (for the guest's libavcodec), the same way.
ffmpeg_src_version=""
if [ -f "$cache/.ffmpeg-src-version" ] && [ -n "$lists_stamp" ]; then
  { IFS= read -r cached_version; cached_stamp="$(cat)"; } <"$cache/.ffmpeg-src-version"
  [ "$cached_stamp" = "$lists_stamp" ] && ffmpeg_src_version="$cached_version"
fi
if [ -z "$ffmpeg_src_version" ]; then
  ffmpeg_src_version="$(apt-cache showsrc --only-source ffmpeg 2>/dev/null | awk '/^Version:/ { print $2 }' |
    sort -V | tail -n 1)"
  [ -n "$ffmpeg_src_version" ] && printf '%s\n%s\n' "$ffmpeg_src_version" "$lists_stamp" >"$cache/.ffmpeg-src-version"
fi
[ -n "$ffmpeg_src_version" ] || die "apt-cache knows no ffmpeg source package (is the deb-src line in place? try apt-get update)"
ffmpeg_host_version="$(pkg_version ffmpeg)"
e2fs_version="$(pkg_version e2fsprogs)"

# ---------------------------------------------------------------------------------------------
# The input hash.

inputs=("$here/build.sh" "$here/kernel.config" "$here/busybox.config" "$here/init")
while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$here/programs" -type f -print0 | sort -z)
while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$here/workloads" -type f -print0 | sort -z)
for f in "${inputs[@]}"; do [ -f "$f" ] || die "missing input $f"; done
hash="$(
  {
    printf 'linux-source-6.1 %s\nbusybox-src %s\ngcc-riscv64-linux-gnu %s\nlibc6-dev-riscv64-cross %s\n' \
      "$linux_version" "$busybox_version" "$gcc_version" "$libc_version"
    printf 'ffmpeg-src %s\nffmpeg %s\ne2fsprogs %s\n' "$ffmpeg_src_version" "$ffmpeg_host_version" "$e2fs_version"
    (cd "$here" && sha256sum -- "${inputs[@]#"$here"/}")
  } | sha256sum | cut -c1-16
)"
if ((print_hash)); then echo "$hash"; exit 0; fi

out="$cache/$hash"
print_outputs() {
  ln -sfn "$hash" "$cache/current"
  echo "kernel=$out/Image"
  echo "initramfs=$out/initramfs.cpio"
  echo "guest_dir=$out"
  echo "guest_hash=$hash"
}
if [ -f "$out/.complete" ] && ((!force)); then
  say "up to date: $out"
  print_outputs
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Building. Sources are unpacked once per package version; object trees are reused (incremental).

start_all=$SECONDS
src="$cache/src"
build="$cache/build"
logs="$cache/logs/$hash"
mkdir -p "$src" "$build" "$logs"
ksrc="$src/linux-source-$linux_version"
# Make cannot work in paths with a colon (the version's epoch), so directory names drop it.
bsrc_parent="$src/busybox-${busybox_version//:/_}"
kbuild="$build/kernel"
bbuild="$build/busybox"
pbuild="$build/programs"
stage="$cache/.staging-$hash"
rm -rf "$stage"
mkdir -p "$stage"

current_log="" bg_pid=""
on_exit() {
  local rc=$?
  # An interrupted build stops its background make too.
  [ -n "$bg_pid" ] && kill "$bg_pid" 2>/dev/null
  if ((rc != 0)); then
    printf 'guest: build FAILED (exit %d)\n' "$rc" >&2
    [ -n "$current_log" ] && printf 'guest: full log: %s\n' "$current_log" >&2 && tail -n 25 "$current_log" | sed 's/^/  | /' >&2
  fi
}
trap on_exit EXIT

elapsed() { local s=$(($SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Runs a make (or any command) with its output in a log, showing one compact progress line.
# $1 = stage name, $2 = log file, $3 = file remembering the step count of the last build.
run_logged() {
  local name="$1" log="$2" steps_file="$3"
  shift 3
  current_log="$log"
  local expect=0 t0=$SECONDS
  [ -f "$steps_file" ] && expect="$(cat "$steps_file")"
  "$@" >"$log" 2>&1 &
  local pid=$! n last_print=-1 tty=0
  bg_pid=$pid
  [ -t 2 ] && tty=1
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    n="$(grep -cE '^  [A-Z][A-Z0-9_]* ' "$log" || true)"
    local pct=""
    ((expect > 0)) && pct=" ($((n * 100 / expect > 99 ? 99 : n * 100 / expect))%)"
    if ((tty)); then
      printf '\rguest:   %s: %d steps%s, %s ' "$name" "$n" "$pct" "$(elapsed "$t0")" >&2
    elif ((SECONDS - t0 - last_print >= 30)); then
      last_print=$((SECONDS - t0))
      printf 'guest:   %s: %d steps%s, %s\n' "$name" "$n" "$pct" "$(elapsed "$t0")" >&2
    fi
  done
  ((tty)) && printf '\r\033[K' >&2
  local rc=0
  wait "$pid" || rc=$?
  bg_pid=""
  ((rc == 0)) || die "$name failed (exit $rc)"
  n="$(grep -cE '^  [A-Z][A-Z0-9_]* ' "$log" || true)"
  # Remember the step count of full builds only (incremental ones are not a useful estimate).
  ((n > expect)) && echo "$n" >"$steps_file"
  say "  $name: done in $(elapsed "$t0") ($n steps)"
  current_log=""
}

# --- kernel sources
say "[1/5] kernel source linux-source-6.1 $linux_version"
if [ ! -f "$ksrc/.doppel-unpacked" ]; then
  say "  unpacking /usr/src/linux-source-6.1.tar.xz (~1.5 GB)"
  rm -rf "$ksrc"
  mkdir -p "$ksrc"
  tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$ksrc" --strip-components=1
  touch "$ksrc/.doppel-unpacked"
fi

# --- kernel config
say "[2/5] kernel config: tinyconfig + guest/kernel.config"
kmake=(make -C "$ksrc" O="$kbuild" ARCH=riscv CROSS_COMPILE="$cross" -j"$jobs")
mkdir -p "$kbuild"
current_log="$logs/kernel-config.log"
{
  "${kmake[@]}" tinyconfig
  "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$kbuild" "$kbuild/.config" "$here/kernel.config"
  "${kmake[@]}" olddefconfig
} >"$current_log" 2>&1 || die "kernel configuration failed"
current_log=""

# Every option the fragment asks for must have survived olddefconfig.
bad=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*)
      grep -qxF "$line" "$kbuild/.config" || bad+=("$line (final: $(grep -E "^(# )?${line%%=*}[= ]" "$kbuild/.config" || echo 'absent, dependencies unmet'))")
      ;;
    "# CONFIG_"*" is not set")
      sym="${line#\# }"
      sym="${sym%% *}"
      if grep -qE "^$sym=" "$kbuild/.config"; then bad+=("$line (final: $(grep -E "^$sym=" "$kbuild/.config"))"); fi
      ;;
  esac
done <"$here/kernel.config"
if ((${#bad[@]})); then
  printf 'guest: error: the final kernel .config lacks options guest/kernel.config asks for:\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  die "fix guest/kernel.config (an option's dependencies are probably missing)"
fi
say "  all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$here/kernel.config") options of guest/kernel.config verified in .config"

# --- kernel build
say "[3/5] kernel Image ($jobs jobs; log $logs/kernel.log)"
run_logged kernel "$logs/kernel.log" "$cache/.kernel-steps" "${kmake[@]}" Image
cp "$kbuild/arch/riscv/boot/Image" "$stage/Image"
cp "$kbuild/.config" "$stage/kernel.config"
cp "$kbuild/System.map" "$stage/System.map"

# --- busybox
say "[4/5] busybox $busybox_version (Debian source), static"
if [ ! -f "$bsrc_parent/.doppel-unpacked" ]; then
  rm -rf "$bsrc_parent"
  mkdir -p "$bsrc_parent"
  current_log="$logs/busybox-source.log"
  (cd "$bsrc_parent" && apt-get source --only-source "busybox=$busybox_version") >"$current_log" 2>&1 ||
    die "apt-get source busybox=$busybox_version failed"
  current_log=""
  touch "$bsrc_parent/.doppel-unpacked"
fi
bsrc="$(find "$bsrc_parent" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*' | head -n 1)"
[ -n "$bsrc" ] || die "no busybox-* directory in $bsrc_parent"
mkdir -p "$bbuild"
bmake=(make -C "$bsrc" O="$bbuild" CROSS_COMPILE="$cross" -j"$jobs")
current_log="$logs/busybox-config.log"
{
  "${bmake[@]}" defconfig
  # Apply guest/busybox.config over defconfig: drop each mentioned symbol, append the fragment.
  syms="$(grep -oE '^(# )?CONFIG_[A-Za-z0-9_]+' "$here/busybox.config" | sed 's/^# //')"
  for s in $syms; do sed -i -E "/^(# )?$s[= ]/d" "$bbuild/.config"; done
  grep -E '^(CONFIG_|# CONFIG_)' "$here/busybox.config" >>"$bbuild/.config"
  { yes '' || true; } | "${bmake[@]}" oldconfig
} >"$current_log" 2>&1 || die "busybox configuration failed"
current_log=""
bad=()
while IFS= read -r line; do
  grep -qxF "$line" "$bbuild/.config" || bad+=("$line")
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$here/busybox.config")
((${#bad[@]} == 0)) || die "busybox .config lacks: ${bad[*]}"
run_logged busybox "$logs/busybox.log" "$cache/.busybox-steps" "${bmake[@]}" busybox
cp "$bbuild/busybox" "$stage/busybox"
cp "$bbuild/.config" "$stage/busybox.config"
# Applet links as busybox itself lists them (one path per line, e.g. /bin/sh).
"${bmake[@]}" busybox.links >/dev/null 2>&1 || true
[ -f "$bbuild/busybox.links" ] || die "busybox.links was not generated in $bbuild"

# --- libavcodec for the video player: Debian's ffmpeg source, only the MPEG-1 video decoder and
# the mpegvideo parser, static, cross-built. Installed into $build/ffmpeg/inst; redone when the
# source version or the configure line changes.
ffsrc_parent="$src/ffmpeg-${ffmpeg_src_version//:/_}"
ffbuild="$build/ffmpeg"
ffinst="$ffbuild/inst"
ffconf=(--prefix="$ffinst" --enable-cross-compile --cross-prefix="$cross" --arch=riscv64 --target-os=linux
  --disable-everything --disable-programs --disable-doc --disable-network --disable-avdevice
  --disable-avformat --disable-swresample --disable-swscale --disable-avfilter --disable-postproc
  --disable-autodetect --disable-debug --enable-static --disable-shared
  --enable-decoder=mpeg1video --enable-parser=mpegvideo)
ffstamp="$ffmpeg_src_version ${ffconf[*]}"
say "[4b/5] libavcodec $ffmpeg_src_version (Debian ffmpeg source): mpeg1video decoder, static"
if [ ! -f "$ffinst/.doppel-built" ] || [ "$(cat "$ffinst/.doppel-built")" != "$ffstamp" ]; then
  if [ ! -f "$ffsrc_parent/.doppel-unpacked" ]; then
    rm -rf "$ffsrc_parent"
    mkdir -p "$ffsrc_parent"
    current_log="$logs/ffmpeg-source.log"
    (cd "$ffsrc_parent" && apt-get source --only-source "ffmpeg=$ffmpeg_src_version") >"$current_log" 2>&1 ||
      die "apt-get source ffmpeg=$ffmpeg_src_version failed"
    current_log=""
    touch "$ffsrc_parent/.doppel-unpacked"
  fi
  ffsrc="$(find "$ffsrc_parent" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | head -n 1)"
  [ -n "$ffsrc" ] || die "no ffmpeg-* directory in $ffsrc_parent"
  mkdir -p "$ffbuild"
  current_log="$logs/ffmpeg-config.log"
  (cd "$ffbuild" && "$ffsrc/configure" "${ffconf[@]}") >"$current_log" 2>&1 || die "ffmpeg configure failed"
  current_log=""
  run_logged libavcodec "$logs/ffmpeg.log" "$cache/.ffmpeg-steps" make -C "$ffbuild" -j"$jobs" install
  echo "$ffstamp" >"$ffinst/.doppel-built"
fi

# --- test programs and the initramfs
say "[5/5] test programs, workloads and initramfs"
mkdir -p "$pbuild"
programs=()
for c in "$here"/programs/*.c; do
  name="$(basename "$c" .c)"
  programs+=("$name")
  current_log="$logs/program-$name.log"
  # A `// link: -lfoo` line in the source names its libraries (libavcodec from the stage above).
  link="$(sed -n 's|^// link: ||p' "$c" | head -n 1)"
  extra=()
  [ -n "$link" ] && extra=(-I"$ffinst/include" -L"$ffinst/lib")
  # shellcheck disable=SC2086 # $link is a list of flags
  "${cross}gcc" -static -O2 -Wall -Wextra -Werror -s "${extra[@]}" -o "$pbuild/$name" "$c" $link >"$current_log" 2>&1 ||
    die "compiling guest/programs/$name.c failed"
done
current_log=""

# The workloads: every executable in guest/workloads/ goes to /etc/workloads/; those with a
# `# workload: DESCRIPTION` header are listed in MANIFEST (also written beside the image as
# workloads.txt, which `doppel workload` reads): NAME<TAB>needs<TAB>seconds<TAB>description,
# where needs is from `# needs:` (disk, fb, net; - for none) and seconds from `# seconds:` (arg:
# the workload takes its duration in seconds as its first argument).
workloads=()
for w in "$here"/workloads/*; do workloads+=("$(basename "$w")"); done
for w in "${workloads[@]}"; do
  f="$here/workloads/$w"
  desc="$(sed -n 's/^# workload: //p' "$f" | head -n 1)"
  [ -n "$desc" ] || continue
  needs="$(sed -n 's/^# needs: //p' "$f" | head -n 1 | tr ' ' ',')"
  secs="$(sed -n 's/^# seconds: //p' "$f" | head -n 1)"
  printf '%s\t%s\t%s\t%s\n' "$w" "${needs:--}" "${secs:--}" "$desc"
done >"$stage/workloads.txt"

# gen_init_cpio from the kernel tree, built for the host.
gcc -O2 -o "$build/gen_init_cpio" "$ksrc/usr/gen_init_cpio.c"
list="$stage/initramfs.list"
{
  echo "# generated by guest/build.sh"
  for d in /dev /proc /sys /tmp /root /etc /bin /sbin /usr /usr/bin /usr/sbin /mnt /var /run; do
    echo "dir $d 0755 0 0"
  done
  echo "nod /dev/console 0600 0 0 c 5 1"
  echo "nod /dev/null 0666 0 0 c 1 3"
  echo "file /bin/busybox $stage/rootfs/busybox 0755 0 0"
  # Links are absolute-to-busybox so they work from any directory.
  sort -u "$bbuild/busybox.links" | while IFS= read -r link; do
    [ "$link" = /bin/busybox ] && continue
    echo "slink $link /bin/busybox 0777 0 0"
  done
  echo "file /init $stage/rootfs/init 0755 0 0"
  echo "file /etc/doppel-guest-hash $stage/rootfs/hash 0644 0 0"
  for p in "${programs[@]}"; do echo "file /usr/bin/$p $stage/rootfs/$p 0755 0 0"; done
  echo "dir /etc/workloads 0755 0 0"
  for w in "${workloads[@]}"; do echo "file /etc/workloads/$w $stage/rootfs/workloads/$w 0755 0 0"; done
  echo "file /etc/workloads/MANIFEST $stage/rootfs/workloads/MANIFEST 0644 0 0"
} >"$list"
# gen_init_cpio's -t covers directories, nodes and links; regular files keep their own mtime, so
# the files are packed from copies stamped with the fixed epoch.
mkdir -p "$stage/rootfs"
cp "$stage/busybox" "$here/init" "$stage/rootfs/"
for p in "${programs[@]}"; do cp "$pbuild/$p" "$stage/rootfs/$p"; done
mkdir -p "$stage/rootfs/workloads"
cp "$here"/workloads/* "$stage/rootfs/workloads/"
cp "$stage/workloads.txt" "$stage/rootfs/workloads/MANIFEST"
echo "$hash" >"$stage/rootfs/hash"
touch -h -d "@$epoch" "$stage/rootfs"/* "$stage/rootfs/workloads"/*
"$build/gen_init_cpio" -t "$epoch" "$list" >"$stage/initramfs.cpio"
rm -rf "$stage/rootfs"

# --- the workload disk: an ext2 image (mke2fs -d) with the videos and the cp workload's 100 MB
# file. Cached apart from the guest by its own inputs (it does not change with the kernel).
disk_hash="$(printf 'disk v1\nffmpeg %s\ne2fsprogs %s\n' "$ffmpeg_host_version" "$e2fs_version" | sha256sum | cut -c1-16)"
disk_dir="$cache/disk/$disk_hash"
if [ ! -f "$disk_dir/.complete" ]; then
  say "  workload disk $disk_hash: videos (host ffmpeg, testsrc2 -> MPEG-1) and a 100 MB file"
  rm -rf "$disk_dir"
  mkdir -p "$disk_dir/root"
  current_log="$logs/disk.log"
  {
    for r in 240:320x240 360:480x360 480:640x480; do
      # testsrc2 from the host's ffmpeg, 6 s at 25 fps, MPEG-1 elementary stream, one thread and
      # bitexact flags so the bytes are the same every time.
      ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "testsrc2=size=${r#*:}:rate=25:duration=6" \
        -c:v mpeg1video -q:v 4 -g 25 -bf 2 -threads 1 -fflags +bitexact -flags +bitexact \
        -f mpeg1video "$disk_dir/root/video-${r%%:*}p.m1v"
    done
    python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(20231).randbytes(100 << 20))' \
      >"$disk_dir/root/big.bin"
    md5sum "$disk_dir/root/big.bin" | cut -d ' ' -f 1 >"$disk_dir/root/big.md5"
    touch -d "@$epoch" "$disk_dir/root"/* "$disk_dir/root"
    E2FSPROGS_FAKE_TIME=$epoch mke2fs -q -F -t ext2 -b 4096 -m 0 -L doppel-work \
      -U 6f1a0c3e-5d2b-4c8e-9a7f-2e4b6d8c0a1e -E root_owner=0:0,hash_seed=3c8a1f2e-7b4d-4e6a-8c2f-1d3b5a7c9e0f \
      -d "$disk_dir/root" "$disk_dir/workloads.img" 320M
    (cd "$disk_dir/root" && sha256sum -- *) >"$disk_dir/files.sha256"
  } >"$current_log" 2>&1 || die "making the workload disk failed"
  current_log=""
  # The videos stay (hosts compare the guest's frames with their own decode); the rest is in the image.
  rm -f "$disk_dir/root/big.bin"
  touch "$disk_dir/.complete"
fi
ln -f "$disk_dir/workloads.img" "$stage/workloads.img" 2>/dev/null || cp "$disk_dir/workloads.img" "$stage/workloads.img"
for v in "$disk_dir"/root/video-*.m1v; do cp "$v" "$stage/"; done
cp "$disk_dir/root/big.md5" "$stage/workloads-big.md5"
cp "$disk_dir/files.sha256" "$stage/workloads-files.sha256"

cat >"$stage/manifest.txt" <<EOF
guest build $hash
linux-source-6.1 $linux_version
busybox (source) $busybox_version
gcc-riscv64-linux-gnu $gcc_version
libc6-dev-riscv64-cross $libc_version
Image sha256 $(sha256sum <"$stage/Image" | cut -c1-64) bytes $(stat -c %s "$stage/Image")
initramfs.cpio sha256 $(sha256sum <"$stage/initramfs.cpio" | cut -c1-64) bytes $(stat -c %s "$stage/initramfs.cpio")
busybox bytes $(stat -c %s "$stage/busybox")
programs: ${programs[*]}
ffmpeg (source, libavcodec) $ffmpeg_src_version
ffmpeg (host, videos) $ffmpeg_host_version
workloads: $(cut -f 1 "$stage/workloads.txt" | tr '\n' ' ')
workloads.img sha256 $(sha256sum <"$stage/workloads.img" | cut -c1-64) bytes $(stat -c %s "$stage/workloads.img")
EOF
cp "$logs"/*.log "$stage/" 2>/dev/null || true
touch "$stage/.complete"
rm -rf "$out"
mv "$stage" "$out"
trap - EXIT
# Keep the newest few outputs (other scripts may still hold their paths) and drop stale staging.
find "$cache" -mindepth 1 -maxdepth 1 -type d -name '.staging-*' ! -name ".staging-$hash" -mmin +60 \
  -exec rm -rf {} +
ls -1dt "$cache"/[0-9a-f]*/ 2>/dev/null | grep -E '/[0-9a-f]{16}/$' | tail -n +6 | xargs -r rm -rf
say "built in $(elapsed "$start_all"): Image $(stat -c %s "$out/Image") bytes, initramfs $(stat -c %s "$out/initramfs.cpio") bytes"
print_outputs
