#!/usr/bin/env bash
# A/B comparison of two tmda ofmipd builds or option sets on the same machine at the
# same time: both relay to one smtp-sink, and each round runs the direct load, then A,
# then B, so the shared machine's drift hits all three alike. Prints each round's
# msg/s and ratio to direct, on kept-open connections and with one message + AUTH per
# connection, then each daemon's CPU ticks. Single runs move by about 10% here; judge
# a change by several rounds of this, not by one run of benches/relay.sh.
#
#   BIN_A=old/tmda BIN_B=target/release/tmda benches/relay-ab.sh
#   ARGS_A="--threads 1" ARGS_B="--threads 2" ROUNDS=6 benches/relay-ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v smtp-sink >/dev/null || { echo "benches/relay-ab.sh: smtp-sink is required (scripts/deps.sh)" >&2; exit 69; }
cargo build --release --locked -q
cargo bench --locked --bench relay --no-run -q 2>/dev/null
load=$(ls -t target/release/deps/relay-* | grep -v '\.d$' | head -1)
bin_a=${BIN_A:-$PWD/target/release/tmda}
bin_b=${BIN_B:-$bin_a}
clients=${CLIENTS:-10}
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sink=$(port); pa=$(port); pb=$(port)
u=(); [ "$(id -u)" -eq 0 ] && u=(-u nobody)
smtp-sink "${u[@]}" -c 127.0.0.1:$sink 2000 >/dev/null 2>&1 & pids+=($!)
mkdir -p "$work/home/.tmda"
printf "USERNAME='bench'\nHOSTNAME='example.com'\nMAIL_TRANSPORT='smtp'\nSMTPHOST='127.0.0.1:$sink'\n" > "$work/home/.tmda/config"
HOME=$work/home GLOBAL_TMDARC=/none "$bin_a" keygen --install -b
printf 'bench:bench\n' > "$work/home/.tmda/tofmipd"; chmod 600 "$work/home/.tmda/tofmipd"
run=(); if [ "$(id -u)" -eq 0 ]; then chown -R nobody "$work/home"; run=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
# shellcheck disable=SC2086 # ARGS_A/ARGS_B are option lists
HOME=$work/home GLOBAL_TMDARC=/none "${run[@]}" "$bin_a" ofmipd -f -p 127.0.0.1:$pa -C 100 --hostname bench ${ARGS_A:-} & a_pid=$!; pids+=($a_pid)
# shellcheck disable=SC2086
HOME=$work/home GLOBAL_TMDARC=/none "${run[@]}" "$bin_b" ofmipd -f -p 127.0.0.1:$pb -C 100 --hostname bench ${ARGS_B:-} & b_pid=$!; pids+=($b_pid)
sleep 1
for p in $pa $pb; do "$load" --port $p --clients $clients --messages 100 --auth bench:bench >/dev/null; done
rate() { "$load" "$@" | sed 's/.*=> \([0-9]*\) msg.*/\1/'; }
ratio() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%.2f", x / d }'; }
for mode in "" --per-connection; do
  n=1500; [ -n "$mode" ] && n=400
  for _ in $(seq "${ROUNDS:-4}"); do
    d=$(rate --port $sink --clients $clients --messages $n $mode)
    a=$(rate --port $pa --clients $clients --messages $n --auth bench:bench $mode)
    b=$(rate --port $pb --clients $clients --messages $n --auth bench:bench $mode)
    echo "${mode:-kept-open}: direct $d msg/s, A $a ($(ratio "$a" "$d")), B $b ($(ratio "$b" "$d"))"
  done
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "CPU ticks: A $(cpu $a_pid), B $(cpu $b_pid)"
