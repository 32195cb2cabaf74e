#!/usr/bin/env bash
# Install the Debian packages tmda needs. Idempotent and quick when everything is
# there already. Needs root (or sudo).
#   scripts/deps.sh             the build, the interoperability tests and the benchmarks
#   scripts/deps.sh quickstart  only what scripts/quickstart needs (the build, smtp-sink, python3)
set -euo pipefail
build=(ca-certificates gcc libc6-dev libpam0g-dev)
quickstart=(postfix python3)
packages=(
  "${build[@]}" "${quickstart[@]}"
  # interoperability peers, started by the tests on loopback high ports
  dovecot-imapd dovecot-pop3d slapd ldap-utils swaks libnet-ssleay-perl libio-socket-ssl-perl msmtp mutt curl openssl
  stunnel4 ucspi-tcp libpam-wrapper pamtester socat
  haproxy systemd
  # the shells the completion files are loaded in, and man for the pages
  bash zsh fish man-db tmux
  # benchmarks
  hyperfine time
  # TMDA itself (Python), the oracle for the incoming side, goes into a venv below
  python3-venv procmail
  # from-dbm/to-dbm lists as TMDA's Pythons write them: GDBM (dbm.gnu, gdbmtool) and
  # Berkeley DB hash files (db5.3_load; Debian's dbm.ndbm is Berkeley DB already)
  python3-gdbm gdbmtool db5.3-util
)
case "${1:-all}" in
  quickstart) packages=("${build[@]}" "${quickstart[@]}") ;;
  all) ;;
  *) echo "usage: scripts/deps.sh [quickstart]" >&2; exit 64 ;;
esac
tmdang() {
  # TMDA's Python 3 port, for the tests and benchmarks that run tmda-filter and
  # tmda-pending side by side with ours. TMDANG_VENV overrides where it lives.
  local venv="${TMDANG_VENV:-/opt/tmdang}"
  if [ ! -x "$venv/bin/tmda-filter" ]; then
    echo "scripts/deps.sh: installing TMDAng 1.0.3 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q TMDAng==1.0.3
  fi
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-all}" = all ] && tmdang
  exit 0
fi
echo "scripts/deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "${1:-all}" = all ] && tmdang
exit 0
