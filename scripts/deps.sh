#!/usr/bin/env bash
# Install the Debian packages the build and the interoperability tests need.
# Idempotent and quick when everything is there already. Needs root (or sudo).
set -euo pipefail
packages=(
  ca-certificates libpam0g-dev
  # interoperability peers, started by the tests on loopback high ports
  postfix dovecot-imapd dovecot-pop3d slapd ldap-utils swaks libnet-ssleay-perl libio-socket-ssl-perl msmtp mutt curl openssl
  stunnel4 ucspi-tcp libpam-wrapper pamtester socat python3
  haproxy systemd
  # benchmarks
  hyperfine time
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "scripts/deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
