#!/usr/bin/env bash
# Start-to-exit time of `tmda address -d` (what Gnus runs per message) against
# /bin/true and `python3 -c pass`, with hyperfine. Not a test: results go to BENCHMARKS.md.
#   usage: benches/address.sh [--export-markdown FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "benches/address.sh: hyperfine is required (apt-get install hyperfine)" >&2; exit 69; }
cargo build --release --locked -q
bin=$PWD/target/release/tmda
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.tmda"
printf 'USERNAME = "jason"\nHOSTNAME = "example.com"\n' > "$home/.tmda/config"
"$bin" keygen -b > "$home/.tmda/crypt_key"
chmod 600 "$home/.tmda/crypt_key"
export HOME=$home GLOBAL_TMDARC=$home/none
"$bin" address -d >/dev/null   # fail early if the setup is wrong
hyperfine -N --warmup 20 --runs 300 "$@" \
  '/bin/true' \
  "$bin address -d" \
  "python3 -c pass"
