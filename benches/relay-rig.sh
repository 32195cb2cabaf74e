# Sourced by benches/relay.sh and benches/relay-ab.sh: builds tmda and the load client,
# starts smtp-sink on a free loopback port and makes a HOME whose TMDA config relays
# to it (user bench, password bench). Then `start_ofmipd BIN PORT ARGS...` starts a
# daemon (as nobody when run as root) and sets $started to its pid; everything started
# is stopped on exit.
# shellcheck shell=bash
set -euo pipefail
cd "$(dirname "$0")/.."
command -v smtp-sink >/dev/null || { echo "$0: smtp-sink is required (scripts/deps.sh)" >&2; exit 69; }
cargo build --release --locked -q
cargo bench --locked --bench relay --no-run -q 2>/dev/null
load=$(ls -t target/release/deps/relay-* | grep -v '\.d$' | head -1)
bin=$PWD/target/release/tmda
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sink=$(port)
u=(); [ "$(id -u)" -eq 0 ] && u=(-u nobody)
smtp-sink "${u[@]}" -c 127.0.0.1:$sink 2000 >/dev/null 2>&1 & pids+=($!)
mkdir -p "$work/home/.tmda"
printf "USERNAME='bench'\nHOSTNAME='example.com'\nMAIL_TRANSPORT='smtp'\nSMTPHOST='127.0.0.1:$sink'\n" > "$work/home/.tmda/config"
HOME=$work/home GLOBAL_TMDARC=/none "$bin" keygen --install -b
printf 'bench:bench\n' > "$work/home/.tmda/tofmipd"; chmod 600 "$work/home/.tmda/tofmipd"
run=(); if [ "$(id -u)" -eq 0 ]; then chown -R nobody "$work/home"; run=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
started=
# Every load client connects from 127.0.0.1: the per-address connection cap (10 by
# default) is lifted, as behind a proxy. (Builds from before the cap lack the option:
# set PER_IP_OPTION= to compare with one.)
per_ip=${PER_IP_OPTION---connections-per-ip=100000}
start_ofmipd() {
  local b=$1 p=$2; shift 2
  HOME=$work/home GLOBAL_TMDARC=/none "${run[@]}" "$b" ofmipd -f -p 127.0.0.1:"$p" --hostname bench $per_ip "$@" &
  started=$!; pids+=("$started")
}
