#!/usr/bin/env bash
# What TLS session resumption saves `tmda ofmipd`, with ofmipd alone on one core:
# ofmipd pinned to CPU 1, the load client and smtp-sink to CPU 0 (taskset), so the
# daemon's rate is bounded by its own CPU per connection rather than by sharing the
# two cores with the load client. Full and resumed handshakes alternate (PAIRS pairs
# per TLS version, N connections each), one 10 KB message and AUTH per connection,
# 10 clients, ECDSA P-256. Prints each run's rate and ofmipd's CPU per connection.
# Not a test: results go to BENCHMARKS.md.
# Usage: [PAIRS=4] [N=5000] [VERSIONS='13 12'] benches/tls-resume.sh
. "$(dirname "$0")/relay-rig.sh"
command -v taskset >/dev/null || { echo "$0: taskset is required (util-linux)" >&2; exit 69; }
[ "$(nproc)" -ge 2 ] || { echo "$0: needs two CPUs" >&2; exit 69; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem" "$work/cert.pem"
ofm=$(port)
start_ofmipd "$bin" "$ofm" -C 100 --ssl --ssl-cert "$work/cert.pem" --ssl-key "$work/key.pem" 2>"$work/ofmipd.log"
ofm_pid=$started
for i in $(seq 50); do (: </dev/tcp/127.0.0.1/$ofm) 2>/dev/null && break; sleep 0.2; done
# Every thread of ofmipd on CPU 1; smtp-sink and this shell (so the load client) on CPU 0.
taskset -a -p -c 1 "$ofm_pid" >/dev/null
for p in "${pids[@]}"; do [ "$p" = "$ofm_pid" ] || taskset -a -p -c 0 "$p" >/dev/null; done
taskset -p -c 0 $$ >/dev/null
cpu() { awk '{print $14+$15}' /proc/"$ofm_pid"/stat; }
"$load" --port "$ofm" --tls --threads 1 --per-connection --clients 10 --messages 30 --auth bench:bench >/dev/null
echo "load before: $(uptime)"
n=${N:-5000}
for v in ${VERSIONS:-13 12}; do
  [ "$v" = 12 ] && v=--tls12 || v=""
  for r in $(seq "${PAIRS:-4}"); do
    for mode in "" --resume; do
      c0=$(cpu)
      # shellcheck disable=SC2086
      out=$("$load" --port "$ofm" --tls $v $mode --threads 1 --per-connection --clients 10 --messages $(( n / 10 )) --auth bench:bench)
      c1=$(cpu)
      echo "${v:---tls13} ${mode:-full}: ${out#*: } ; ofmipd $(awk -v t=$((c1 - c0)) -v n="$n" 'BEGIN{printf "%.0f", t*1e4/n}') us CPU/conn"
    done
  done
done
echo "load after: $(uptime)"
