#!/usr/bin/env bash
# tmda filter against TMDA's own tmda-filter (TMDAng 1.0.3, the Python 3 port that
# scripts/deps.sh installs in $TMDANG_VENV, default /opt/tmdang), side by side in one
# hyperfine run, whole process start to exit (reading the config, key and filter):
#  (a) a whitelisted sender (a from-file rule says ok), delivered to a Maildir;
#  (b) an unknown sender: held in the pending queue and challenged through the
#      sendmail transport. The sendmail program is a one-line sh script that drains its
#      input; it is timed on its own (with a captured challenge as input) and its mean
#      is subtracted from both (b) rows, so the program itself is not counted.
# Each side has a HOME of its own with the same config; MAX_AUTORESPONSES_PER_DAY = 0
# and PENDING_CLEANUP_ODDS = 0 keep every run on the same path (no rate-limit records,
# no random queue cleanup). Not a test: results go to BENCHMARKS.md.
# The work directory is on /tmp's file system: both sides fsync what they write, so the
# disk's sync latency is in the figures. BENCH_DIR=/dev/shm puts it on tmpfs, where a
# sync costs nothing, to time the programs alone.
#   usage: [BENCH_DIR=DIR] benches/filter.sh [RUNS]   (default 60; nice -n 19 on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-60}
venv=${TMDANG_VENV:-/opt/tmdang}
for p in hyperfine python3; do
  command -v "$p" >/dev/null || { echo "benches/filter.sh: $p is required (scripts/deps.sh installs it)" >&2; exit 69; }
done
[ -x "$venv/bin/tmda-filter" ] || { echo "benches/filter.sh: $venv/bin/tmda-filter is required (scripts/deps.sh installs TMDAng)" >&2; exit 69; }
cargo build --release --locked -q
bin=$PWD/target/release/tmda
ng=$venv/bin/tmda-filter
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}"); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexec cat >/dev/null\n' > "$work/drain"
printf '#!/bin/sh\ncat > %s/challenge\n' "$work" > "$work/capture"
chmod 755 "$work/drain" "$work/capture"

setup_home() { # NAME SENDMAIL_PROGRAM
  local h=$work/$1
  mkdir -p "$h/.tmda/filters" "$h/Maildir/new" "$h/Maildir/cur" "$h/Maildir/tmp"
  echo b7fdc8a5afe5f364c87e2f984cbbd27450255675 > "$h/.tmda/crypt_key"
  chmod 600 "$h/.tmda/crypt_key"
  cat > "$h/.tmda/config" <<EOF
MAIL_TRANSFER_AGENT = 'postfix'
DELIVERY = '$h/Maildir/'
MAIL_TRANSPORT = 'sendmail'
SENDMAIL_PROGRAM = '$2'
USERNAME = 'bench'
HOSTNAME = 'example.com'
FULLNAME = 'Bench User'
MAX_AUTORESPONSES_PER_DAY = 0
PENDING_CLEANUP_ODDS = 0
EOF
  # A whitelist of 200 addresses, the sender last.
  for i in $(seq 1 199); do echo "person$i@example.net"; done > "$h/.tmda/whitelist"
  echo friend@example.org >> "$h/.tmda/whitelist"
  printf 'from-file %s/.tmda/whitelist ok\n' "$h" > "$h/.tmda/filters/incoming"
}
setup_home ours "$work/drain"
setup_home theirs "$work/drain"
setup_home cap "$work/capture"

msg() { # FROM
  python3 - "$1" <<'PY'
import sys
frm = sys.argv[1]
head = (f"Return-Path: <{frm}>\nReceived: from mx.example.org by example.com with ESMTP; Sun, 06 Dec 2026 01:00:00 +0000\n"
        f"From: Someone <{frm}>\nTo: bench@example.com\nSubject: benchmark message\n"
        f"Message-ID: <bench@example.org>\nDate: Sun, 06 Dec 2026 01:00:00 +0000\n\n")
line = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghij\n"
sys.stdout.write(head + line * 30)
PY
}
msg friend@example.org > "$work/known"
msg stranger@example.org > "$work/unknown"

export RECIPIENT=bench@example.com EXTENSION= GLOBAL_TMDARC=$work/none PATH=/usr/bin:/bin
# Fail early if a side does not do what is measured; capture a challenge for the drain's timing.
check() { # HOME SENDER INPUT WHAT
  HOME=$1 SENDER=$2 "${@:5}" < "$3" || { echo "benches/filter.sh: $4 failed" >&2; exit 70; }
}
check "$work/ours" friend@example.org "$work/known" "ours, whitelisted" "$bin" filter
check "$work/theirs" friend@example.org "$work/known" "TMDAng, whitelisted" "$ng"
[ "$(ls "$work/ours/Maildir/new" | wc -l)" = 1 ] && [ "$(ls "$work/theirs/Maildir/new" | wc -l)" = 1 ] \
  || { echo "benches/filter.sh: a whitelisted message was not delivered" >&2; exit 70; }
check "$work/cap" stranger@example.org "$work/unknown" "ours, challenge" "$bin" filter
[ -s "$work/challenge" ] || { echo "benches/filter.sh: no challenge was sent" >&2; exit 70; }
check "$work/theirs" stranger@example.org "$work/unknown" "TMDAng, challenge" "$ng"
[ -n "$(ls -A "$work/theirs/.tmda/pending")" ] || { echo "benches/filter.sh: TMDAng held nothing" >&2; exit 70; }

hyperfine --warmup 3 --runs "$runs" --export-json "$work/result.json" \
  -n "(a) whitelisted, ours"   "HOME=$work/ours SENDER=friend@example.org $bin filter < $work/known" \
  -n "(a) whitelisted, TMDAng" "HOME=$work/theirs SENDER=friend@example.org $ng < $work/known" \
  -n "(b) challenged, ours"    "HOME=$work/ours SENDER=stranger@example.org $bin filter < $work/unknown" \
  -n "(b) challenged, TMDAng"  "HOME=$work/theirs SENDER=stranger@example.org $ng < $work/unknown" \
  -n "sendmail program alone"  "$work/drain -i -f '<>' -- stranger@example.org < $work/challenge"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
# Wall time (mean, and min: the least disturbed run) and CPU time (user + system,
# steadier on a busy machine), in ms; the (b) rows less the sendmail program's.
def raw(name):
    x = r[name]
    return {"mean": x["mean"], "min": x["min"], "cpu": x["user"] + x["system"], "sd": x["stddev"]}
def fig(name, sub=None):
    f = raw(name)
    if sub:
        f = {k: v if k == "sd" else v - raw(sub)[k] for k, v in f.items()}
    return {k: v * 1000 for k, v in f.items()}
d = fig("sendmail program alone")
print()
print(f"sendmail program alone: mean {d['mean']:.1f} ms, min {d['min']:.1f} ms, CPU {d['cpu']:.1f} ms (subtracted from the (b) rows)")
print("| case | ours: mean / min / CPU | TMDAng: mean / min / CPU | TMDAng / ours (mean, CPU) |")
print("|---|---|---|---|")
for case, sub in (("(a) whitelisted", None), ("(b) challenged", "sendmail program alone")):
    o, t = fig(f"{case}, ours", sub), fig(f"{case}, TMDAng", sub)
    row = lambda f: f"{f['mean']:.1f} ms ± {f['sd']:.1f} / {f['min']:.1f} / {f['cpu']:.1f} ms"
    print(f"| {case} | {row(o)} | {row(t)} | {t['mean'] / o['mean']:.0f}x, {t['cpu'] / o['cpu']:.0f}x |")
PY
