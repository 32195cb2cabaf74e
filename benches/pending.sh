#!/usr/bin/env bash
# Listing 10,000 held messages in terse form (`tmda pending -b -T`), ours against TMDA's
# Python tmda-pending (TMDAng 1.0.3 from $TMDANG_VENV, default /opt/tmdang), on the
# same Maildir-format queue (TMDAng's original-format queue crashes tmda-pending: Q25).
# Not a test: results go to BENCHMARKS.md. Target: ours under 0.5 s.
#   usage: benches/pending.sh [N] [--export-markdown FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "benches/pending.sh: hyperfine is required (apt-get install hyperfine)" >&2; exit 69; }
n=10000
if [[ ${1:-} =~ ^[0-9]+$ ]]; then n=$1; shift; fi
venv=${TMDANG_VENV:-/opt/tmdang}
[ -x "$venv/bin/tmda-pending" ] || { echo "benches/pending.sh: $venv/bin/tmda-pending is missing (scripts/deps.sh installs it)" >&2; exit 69; }
cargo build --release --locked -q
bin=$PWD/target/release/tmda
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
mkdir -p "$home/.tmda/pending/new" "$home/.tmda/pending/cur" "$home/.tmda/pending/tmp"
printf 'USERNAME = "testuser"\nHOSTNAME = "nowhere.com"\nPENDING_QUEUE_FORMAT = "maildir"\nDELIVERY = "'"$home/Maildir/"'"\n' > "$home/.tmda/config"
"$bin" keygen -b > "$home/.tmda/crypt_key"
chmod 600 "$home/.tmda/crypt_key"
# $n messages as tmda filter holds them: realistic headers, a 2 KB body.
python3 - "$home/.tmda/pending/new" "$n" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
body = ("lorem ipsum dolor sit amet " * 3 + "\n") * 25
for i in range(n):
    ts, pid = 1700000000 + i * 37, 1000 + i % 30000
    with open(f"{d}/{ts}.{pid}.bench", "w") as f:
        f.write(f"Return-Path: <sender{i}@example.org>\n"
                f"Received: from mx.example.org by nowhere.com; Sat, 05 Dec 2026 22:38:53 +0000\n"
                f"Delivered-To: testuser@nowhere.com\n"
                f"From: Sender Number {i} <sender{i}@example.org>\n"
                f"To: testuser@nowhere.com\n"
                f"Subject: message number {i}\n"
                f"Message-ID: <{i}@example.org>\n"
                f"Date: Sat, 05 Dec 2026 22:38:53 +0000\n"
                f"X-TMDA-Recipient: testuser@nowhere.com\n\n{body}")
PY
export HOME=$home GLOBAL_TMDARC=$home/none TMDA_NO_WARN=1
[ "$("$bin" pending -b -T | wc -l)" = "$n" ] || { echo "benches/pending.sh: ours did not list $n messages" >&2; exit 70; }
[ "$("$venv/bin/tmda-pending" -b -T | wc -l)" = "$n" ] || { echo "benches/pending.sh: TMDAng did not list $n messages" >&2; exit 70; }
hyperfine -N --warmup 1 --runs 5 "$@" \
  "$bin pending -b -T" \
  "$venv/bin/tmda-pending -b -T"
