#!/usr/bin/env bash
# A/B comparison of two tmda ofmipd builds or option sets on the same machine at the
# same time: both relay to one smtp-sink, and each round runs the direct load, then A
# and B, so the shared machine's drift hits all three alike. Prints each round's
# msg/s and ratio to direct, on kept-open connections and with one message + AUTH per
# connection, then each daemon's CPU ticks. Single runs move by about 10% here; judge
# a change by several rounds of this (an even number: A and B take turns going first),
# not by one run of benches/relay.sh.
#
#   BIN_A=old/tmda BIN_B=target/release/tmda benches/relay-ab.sh
#   ARGS_A="--threads 1" ARGS_B="--threads 2" ROUNDS=6 benches/relay-ab.sh
# shellcheck source=benches/relay-rig.sh
. "$(dirname "$0")/relay-rig.sh"
bin_a=${BIN_A:-$bin}
bin_b=${BIN_B:-$bin_a}
clients=${CLIENTS:-10}
pa=$(port); pb=$(port)
# shellcheck disable=SC2086 # ARGS_A/ARGS_B are option lists
start_ofmipd "$bin_a" "$pa" -C 100 ${ARGS_A:-}; a_pid=$started
# shellcheck disable=SC2086
start_ofmipd "$bin_b" "$pb" -C 100 ${ARGS_B:-}; b_pid=$started
sleep 1
for p in $pa $pb; do "$load" --port $p --clients $clients --messages 100 --auth bench:bench >/dev/null; done
rate() { "$load" "$@" | sed 's/.*=> \([0-9]*\) msg.*/\1/'; }
ratio() { awk -v x="$1" -v d="$2" 'BEGIN { printf "%.2f", x / d }'; }
for mode in "" --per-connection; do
  n=1500; [ -n "$mode" ] && n=400
  for round in $(seq "${ROUNDS:-4}"); do
    d=$(rate --port $sink --clients $clients --messages $n $mode)
    # Alternate which of A and B goes first: the second of a pair runs after the first's
    # connections (TIME_WAIT, caches) and measured a few percent lower with equal builds.
    if [ $((round % 2)) -eq 1 ]; then
      a=$(rate --port $pa --clients $clients --messages $n --auth bench:bench $mode)
      b=$(rate --port $pb --clients $clients --messages $n --auth bench:bench $mode)
    else
      b=$(rate --port $pb --clients $clients --messages $n --auth bench:bench $mode)
      a=$(rate --port $pa --clients $clients --messages $n --auth bench:bench $mode)
    fi
    line="${mode:-kept-open}: direct $d msg/s, A $a ($(ratio "$a" "$d")), B $b ($(ratio "$b" "$d"))"
    if [ -n "$mode" ]; then
      # The same load with its AUTH sent to smtp-sink too (it answers any credentials).
      da=$(rate --port $sink --clients $clients --messages $n --auth bench:bench $mode)
      line="$line; direct with AUTH $da msg/s: A $(ratio "$a" "$da"), B $(ratio "$b" "$da")"
    fi
    echo "$line"
  done
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "CPU ticks: A $(cpu $a_pid), B $(cpu $b_pid)"
