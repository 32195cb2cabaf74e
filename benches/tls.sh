#!/usr/bin/env bash
# Connections per second over implicit TLS (one message of 10 KB plus AUTH PLAIN per
# connection, 10 clients, the Rust load client benches/relay.rs with --tls), side by
# side: `tmda ofmipd --ssl` (release build) and Postfix's submissions service
# (smtpd_tls_wrappermode, Dovecot SASL), the same ECDSA P-256 certificate, both relaying
# to the same smtp-sink. TLS 1.3 with full handshakes and with resumption (tickets),
# then TLS 1.2 full and resumed by session ID (the servers' session caches), then TLS
# 1.3 at 50 clients. Each case RUNS times (default 3), ofmipd and Postfix interleaved;
# report the medians. Each server's CPU per connection is printed after each case
# (Postfix's with all its processes and Dovecot's).
# Needs root (Postfix and Dovecot run as their own users), postfix, dovecot-core,
# smtp-sink and openssl. Results go to BENCHMARKS.md.
# shellcheck source=benches/relay-rig.sh
. "$(dirname "$0")/relay-rig.sh"
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (a private Postfix and Dovecot are started)" >&2; exit 77; }
for c in postfix dovecot openssl; do
  command -v $c >/dev/null || { echo "$0: $c is required (scripts/deps.sh)" >&2; exit 69; }
done

# Postfix's queue on tmpfs when there is one: ofmipd keeps no queue (it answers after
# the relay did), so Postfix is not made to wait for a disk either.
shm=/dev/shm; [ -d $shm ] && [ -w $shm ] || shm=$work
pfx=$(mktemp -d "$shm/tls-bench-pfx.XXXXXX"); chmod 755 "$pfx"
dc=$work/dc
stop_all() {
  [ -f "$pfx/etc/main.cf" ] && postfix -c "$pfx/etc" stop >/dev/null 2>&1 || true
  rm -rf "$pfx"
  cleanup
}
trap stop_all EXIT

# One ECDSA P-256 certificate for both servers (readable by nobody, who runs ofmipd).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem" "$work/cert.pem"

# Dovecot: nothing but its auth service, with a socket for Postfix; the same user and
# password as ofmipd's authfile, in clear as there.
mkdir -p "$dc/run" "$dc/state"
printf 'bench:{PLAIN}bench\n' > "$dc/passwd"
cat > "$dc/dovecot.conf" <<EOF
base_dir = $dc/run
state_dir = $dc/state
log_path = $dc/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = $dc/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=/nonexistent
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
dovecot -F -c "$dc/dovecot.conf" & pids+=($!); dc_master=$!

# Postfix: a private instance whose only smtpd is a submissions (port 465 style)
# service as Debian's master.cf suggests it. Defaults otherwise: a process limit of 100,
# each smtpd serving up to 100 connections before it exits, tlsmgr for the session
# cache. TLS 1.3 tickets need nothing beyond the default (their keys come from tlsmgr);
# TLS 1.2 session IDs need the cache database, set here so that Postfix resumes too.
pfx_port=$(port)
mkdir -p "$pfx/etc" "$pfx/spool" "$pfx/data"
chown postfix "$pfx/data"
cat > "$pfx/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pfx/spool
data_directory = $pfx/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = pfx.localdomain
mydestination =
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:$sink
alias_maps =
alias_database =
maillog_file = $pfx/maillog
maillog_file_prefixes = $pfx
smtpd_tls_chain_files = $work/key.pem, $work/cert.pem
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
EOF
cat > "$pfx/etc/master.cf" <<EOF
127.0.0.1:$pfx_port inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=$dc/run/auth-postfix
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
postfix -c "$pfx/etc" start 2>&1 | grep -v "starting the Postfix" >&2 || true

# ofmipd: implicit TLS, the per-address cap lifted (all load comes from 127.0.0.1) and
# room for every client's connection while the previous one closes.
ofm=$(port)
start_ofmipd "$bin" "$ofm" -C 100 --ssl --ssl-cert "$work/cert.pem" --ssl-key "$work/key.pem" 2>"$work/ofmipd.log"
ofm_pid=$started
for i in $(seq 50); do
  [ -S "$dc/run/auth-postfix" ] && (: </dev/tcp/127.0.0.1/$pfx_port) 2>/dev/null \
    && (: </dev/tcp/127.0.0.1/$ofm) 2>/dev/null && break
  [ "$i" -eq 50 ] && { echo "$0: servers did not start" >&2; tail "$dc/dovecot.log" "$pfx/maillog" "$work/ofmipd.log" >&2; exit 70; }
  sleep 0.2
done

# CPU ticks of a process and its children, live and reaped: Postfix's master reaps the
# smtpd, cleanup, smtp... processes it starts, so their time lands in its cutime/cstime.
tree_cpu() {
  local t=0 p v
  for p in "$1" $(ps -o pid= --ppid "$1"); do
    v=$(awk '{print $14+$15+$16+$17}' /proc/"$p"/stat 2>/dev/null) && t=$(( t + v ))
  done
  echo $t
}
pfx_master=$(cat "$pfx/spool/pid/master.pid" | tr -d ' ')
# Postfix's cost includes Dovecot's, which answers its AUTH.
postfix_cpu() { echo $(( $(tree_cpu "$pfx_master") + $(tree_cpu "$dc_master") )); }
# Warm-up (not measured): relay connections, smtpd processes, tickets' keys.
for p in $ofm $pfx_port; do
  "$load" --port "$p" --tls --threads 1 --per-connection --clients 10 --messages 30 --auth bench:bench >/dev/null
done
echo "load before the runs: $(uptime)"
runs=${RUNS:-3}
n_ofm=${N_OFMIPD:-5000}   # connections in each ofmipd run
n_pfx=${N_POSTFIX:-2000}  # and in each Postfix run (Postfix is slower; runs of similar length)
# Cases: clients, then the load client's TLS options. The last one lets Postfix run
# more sessions at once, to show its rate when it is not waiting on its sessions.
for case in "10" "10 --resume" "10 --tls12" "10 --tls12 --resume" "50"; do
  read -r c mode <<<"$case"
  echo "== $c clients, TLS ${mode:-1.3 full handshakes}"
  # Each server's CPU from the first run of the case to a second after the last: Postfix
  # may still be relaying the last messages from its queue when the load client ends.
  o0=$(tree_cpu $ofm_pid) p0=$(postfix_cpu)
  for r in $(seq "$runs"); do
    # shellcheck disable=SC2086
    echo "tmda ofmipd:  $("$load" --port $ofm --tls $mode --threads 1 --per-connection --clients $c --messages $(( n_ofm / c )) --auth bench:bench)"
    # shellcheck disable=SC2086
    echo "Postfix:      $("$load" --port $pfx_port --tls $mode --threads 1 --per-connection --clients $c --messages $(( n_pfx / c )) --auth bench:bench)"
  done
  sleep 1
  used=$(( $(tree_cpu $ofm_pid) - o0 )) pused=$(( $(postfix_cpu) - p0 ))
  per() { awk -v t="$1" -v n="$2" 'BEGIN{printf "%.0f us", t*1e4/n}'; }
  echo "CPU per connection: ofmipd $(per $used $(( runs * n_ofm ))), Postfix and Dovecot $(per $pused $(( runs * n_pfx )))"
done
echo "load after the runs: $(uptime)"
deferred=$(find "$pfx/spool/deferred" -type f 2>/dev/null | wc -l)
echo "Postfix: $(grep -c 'status=sent' "$pfx/maillog" || true) messages relayed, $deferred deferred"
