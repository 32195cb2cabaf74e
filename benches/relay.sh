#!/usr/bin/env bash
# Relay throughput and latency of `tmda ofmipd` (release build) to Postfix's smtp-sink,
# side by side with the same load sent to smtp-sink directly, at 1, 10 and 50
# concurrent clients (10 KB messages), also with a new connection and AUTH per message;
# and ofmipd's memory with 1,000 idle connections (-C 1000). Results go to BENCHMARKS.md.
# shellcheck source=benches/relay-rig.sh
. "$(dirname "$0")/relay-rig.sh"
ofm=$(port); ofm2=$(port)
start_ofmipd "$bin" "$ofm" -C 100; busy_pid=$started
start_ofmipd "$bin" "$ofm2" -C 1000; idle_pid=$started
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
  # The same load, AUTH included: smtp-sink answers any credentials (with 250).
  echo "direct, with AUTH:     $("$load" --port $sink --clients 10 --messages 300 --per-connection --auth bench:bench)"
  echo "through tmda ofmipd:   $("$load" --port $ofm --clients 10 --messages 300 --per-connection --auth bench:bench)"
done
total=$(( 250 + runs * (60000 + 3000) ))
echo "ofmipd CPU for all $total messages above: $(awk -v n=$total '{printf "%.2f s, %.1f us per message", ($14+$15)/100, ($14+$15)*1e4/n}' /proc/$busy_pid/stat)"
echo "memory of ofmipd (-C 1000):"
echo "  at start: $(grep VmRSS /proc/$idle_pid/status)"
"$load" --port $ofm2 --idle 1000 --hold 3 & holder=$!
sleep 2
echo "  with 1000 idle connections: $(grep VmRSS /proc/$idle_pid/status); peak $(grep VmHWM /proc/$idle_pid/status)"
wait $holder
