#!/usr/bin/env bash
# tmda sendmail: messages per second (10 KB message, 1 and 10 recipients) through
#  (a) the sendmail transport with a minimal program that reads its input, and
#  (b) the SMTP transport to Postfix's smtp-sink on loopback,
# and peak RSS for 1 MB and 100 MB messages (GNU time's maximum resident set size).
# Not a test: results go to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in hyperfine smtp-sink /usr/bin/time; do
  command -v "$p" >/dev/null || { echo "benches/sendmail.sh: $p is required (scripts/deps.sh installs it)" >&2; exit 69; }
done
cargo build --release --locked -q
bin=$PWD/target/release/tmda
work=$(mktemp -d); chmod 755 "$work"
sinkpid=""
cleanup() { [ -n "$sinkpid" ] && kill "$sinkpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/home/.tmda" "$work/sink"; chmod 777 "$work/sink"
"$bin" keygen -b > "$work/home/.tmda/crypt_key"; chmod 600 "$work/home/.tmda/crypt_key"
printf '#!/bin/sh\nexec cat >/dev/null\n' > "$work/drain"; chmod 755 "$work/drain"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -u nobody -c 127.0.0.1:$port 1000 >/dev/null 2>&1 & sinkpid=$!
sleep 0.5
export HOME=$work/home GLOBAL_TMDARC=$work/none
cfg_sendmail="USERNAME='bench'\nHOSTNAME='example.com'\nSENDMAIL_PROGRAM='$work/drain'\n"
cfg_smtp="USERNAME='bench'\nHOSTNAME='example.com'\nMAIL_TRANSPORT='smtp'\nSMTPHOST='127.0.0.1:$port'\n"
printf "$cfg_sendmail" > "$work/sendmail.cfg"; printf "$cfg_smtp" > "$work/smtp.cfg"

make_msg() { # size-in-bytes recipients file
  python3 - "$1" "$2" "$3" <<'PY'
import sys
size, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
to = ", ".join(f"r{i}@example.org" for i in range(n))
head = f"From: Bench <bench@example.com>\nTo: {to}\nSubject: benchmark\n\n"
line = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghij\n"
with open(path, "w") as f:
    f.write(head)
    f.write(line * ((size - len(head)) // len(line) + 1))
PY
}
make_msg 10240 1 "$work/m1"; make_msg 10240 10 "$work/m10"
make_msg 1048576 1 "$work/big1"; make_msg 104857600 1 "$work/big100"

hyperfine --warmup 5 --runs 100 "$@" \
  -n "sendmail transport, 1 recipient"   "$bin sendmail -c $work/sendmail.cfg -t < $work/m1" \
  -n "sendmail transport, 10 recipients" "$bin sendmail -c $work/sendmail.cfg -t < $work/m10" \
  -n "smtp transport, 1 recipient"       "$bin sendmail -c $work/smtp.cfg -t < $work/m1" \
  -n "smtp transport, 10 recipients"     "$bin sendmail -c $work/smtp.cfg -t < $work/m10"

echo
echo "peak RSS (KiB), maximum resident set size as reported by GNU time:"
for f in big1 big100; do
  for t in sendmail smtp; do
    kb=$(/usr/bin/time -f %M "$bin" sendmail -c "$work/$t.cfg" -t < "$work/$f" 2>&1 >/dev/null | tail -1)
    echo "  $f via $t transport: $kb KiB"
  done
done
