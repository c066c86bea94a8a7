#!/usr/bin/env bash
# VMShadow Figure 11: run time and effectiveness of the placement algorithms (the paper's three
# greedy heuristics, the improved heuristic and the exact ILP) for 2000 desktops over 2..40 sites
# and for 40 sites over 100..1200 desktops. Writes out/place-fig11/fig11.{csv,md,svg} (+ .png when
# rsvg-convert is installed; scripts/setup.sh installs it).
#
#   bench/place-fig11.sh            full sweep, ILP limited to 60 s per point (takes a while)
#   bench/place-fig11.sh --quick    3 + 3 points, ILP limited to 10 s
#   extra arguments go to `doppel place bench` (e.g. --ilp-limit 120, --k 10, --out-dir DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
# The test profile is optimised (opt-level 3) and shares its HiGHS build with `cargo test`, which
# saves a second from-source C++ build of HiGHS for the release profile.
cargo build --profile test -p doppel --quiet
out=out/place-fig11
extra=(--out-dir "$out")
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[i]}" == --out-dir ]]; then out="${args[i+1]}"; extra=(); fi
done
./target/debug/doppel place bench "${extra[@]}" "$@"
if command -v rsvg-convert >/dev/null; then
  rsvg-convert -b white "$out/fig11.svg" -o "$out/fig11.png"
  echo "wrote $out/fig11.png"
fi
