#!/usr/bin/env bash
# Relay throughput and latency of `tmda ofmipd` (release build) to Postfix's smtp-sink,
# side by side with the same load sent to smtp-sink directly, at 1, 10 and 50
# concurrent clients (10 KB messages), also with a new connection and AUTH per message;
# and ofmipd's memory with 1,000 idle connections (-C 1000). Results go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v smtp-sink >/dev/null || { echo "benches/relay.sh: smtp-sink is required (scripts/deps.sh)" >&2; exit 69; }
cargo build --release --locked -q
cargo bench --locked --bench relay --no-run -q 2>/dev/null
load=$(ls -t target/release/deps/relay-* | grep -v '\.d$' | head -1)
bin=$PWD/target/release/tmda
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sink=$(port); ofm=$(port); ofm2=$(port)
u=(); [ "$(id -u)" -eq 0 ] && u=(-u nobody)
smtp-sink "${u[@]}" -c 127.0.0.1:$sink 2000 >/dev/null 2>&1 & pids+=($!)
mkdir -p "$work/home/.tmda"
printf "USERNAME='bench'\nHOSTNAME='example.com'\nMAIL_TRANSPORT='smtp'\nSMTPHOST='127.0.0.1:$sink'\n" > "$work/home/.tmda/config"
HOME=$work/home GLOBAL_TMDARC=/none "$bin" keygen --install -b
printf 'bench:bench\n' > "$work/home/.tmda/tofmipd"; chmod 600 "$work/home/.tmda/tofmipd"
run=(); if [ "$(id -u)" -eq 0 ]; then chown -R nobody "$work/home"; run=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
HOME=$work/home GLOBAL_TMDARC=/none "${run[@]}" "$bin" ofmipd -f -p 127.0.0.1:$ofm -C 100 --hostname bench & pids+=($!)
HOME=$work/home GLOBAL_TMDARC=/none "${run[@]}" "$bin" ofmipd -f -p 127.0.0.1:$ofm2 -C 1000 --hostname bench & idle_pid=$!; pids+=($idle_pid)
sleep 1
# Warm-up (not measured): a running server has its relay connections open already.
"$load" --port $ofm --clients 50 --messages 5 --auth bench:bench >/dev/null
# Each pair RUNS times (default 3), interleaved, 20,000 messages per run: the machine is
# shared, so single short runs move by 10-20%; report the medians.
runs=${RUNS:-3}
for c in 1 10 50; do
  n=$(( 20000 / c ))
  for r in $(seq "$runs"); do
    echo "direct to smtp-sink:   $("$load" --port $sink --clients $c --messages $n)"
    echo "through tmda ofmipd:   $("$load" --port $ofm --clients $c --messages $n --auth bench:bench)"
  done
done
echo "one message + AUTH per connection, 10 clients:"
for r in $(seq "$runs"); do
  echo "direct to smtp-sink:   $("$load" --port $sink --clients 10 --messages 300 --per-connection)"
  echo "through tmda ofmipd:   $("$load" --port $ofm --clients 10 --messages 300 --per-connection --auth bench:bench)"
done
total=$(( 250 + runs * (60000 + 3000) ))
echo "ofmipd CPU for all $total messages above: $(awk -v n=$total '{printf "%.2f s, %.1f us per message", ($14+$15)/100, ($14+$15)*1e4/n}' /proc/${pids[1]}/stat)"
echo "memory of ofmipd (-C 1000):"
echo "  at start: $(grep VmRSS /proc/$idle_pid/status)"
"$load" --port $ofm2 --idle 1000 --hold 3 & holder=$!
sleep 2
echo "  with 1000 idle connections: $(grep VmRSS /proc/$idle_pid/status); peak $(grep VmHWM /proc/$idle_pid/status)"
wait $holder
