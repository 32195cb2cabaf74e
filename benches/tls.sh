#!/usr/bin/env bash
# Connections per second over implicit TLS (one message of 10 KB plus AUTH PLAIN per
# connection, 10 clients, the Rust load client benches/relay.rs with --tls), side by
# side: `tmda ofmipd --ssl` (release build) and Postfix's submissions service
# (smtpd_tls_wrappermode, Dovecot SASL), the same ECDSA P-256 certificate, both relaying
# to the same smtp-sink. TLS 1.3 with full handshakes and with resumption (tickets),
# then TLS 1.2 full and resumed by session ID (the servers' session caches). Each case
# RUNS times (default 3), ofmipd and Postfix interleaved; report the medians.
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
dovecot -F -c "$dc/dovecot.conf" & pids+=($!)

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

cpu() { awk '{print $14+$15}' /proc/"$1"/stat; }
# Warm-up (not measured): relay connections, smtpd processes, tickets' keys.
for p in $ofm $pfx_port; do
  "$load" --port "$p" --tls --per-connection --clients 10 --messages 30 --auth bench:bench >/dev/null
done
echo "load before the runs: $(uptime)"
runs=${RUNS:-3}
n_ofm=${N_OFMIPD:-500}   # connections per client in each ofmipd run
n_pfx=${N_POSTFIX:-200}  # and in each Postfix run (Postfix is slower; runs of similar length)
for mode in "" "--resume" "--tls12" "--tls12 --resume"; do
  echo "== TLS ${mode:-full handshakes (TLS 1.3)}"
  used=0
  for r in $(seq "$runs"); do
    before=$(cpu $ofm_pid)
    # shellcheck disable=SC2086
    echo "tmda ofmipd:  $("$load" --port $ofm --tls $mode --per-connection --clients 10 --messages $n_ofm --auth bench:bench)"
    used=$(( used + $(cpu $ofm_pid) - before ))
    # shellcheck disable=SC2086
    echo "Postfix:      $("$load" --port $pfx_port --tls $mode --per-connection --clients 10 --messages $n_pfx --auth bench:bench)"
  done
  echo "ofmipd CPU: $(awk -v t=$used -v n=$(( runs * 10 * n_ofm )) 'BEGIN{printf "%.1f us per connection", t*1e4/n}')"
done
echo "load after the runs: $(uptime)"
deferred=$(find "$pfx/spool/deferred" -type f 2>/dev/null | wc -l)
echo "Postfix: $(grep -c 'status=sent' "$pfx/maillog" || true) messages relayed, $deferred deferred"
