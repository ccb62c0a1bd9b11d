#!/usr/bin/env bash
# Installs every Debian package that building, running and testing PTDCloud needs.
# Idempotent: when everything is present it only checks and exits within a second.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev
  libpqxx-dev libpq-dev
  libhiredis-dev
  prometheus-cpp-dev
  catch2
  nlohmann-json3-dev
  libssl-dev
  libboost-dev libargon2-dev
  golang-github-gogo-googleapis-dev
  grpc-proto
  postgresql-15 postgresql-client-15 postgresql-contrib
  redis-server redis-tools
  curl procps python3
  prometheus
)

# One dpkg-query for all packages: the check must stay instant when everything is there.
# dpkg-query exits non-zero when some package is unknown to dpkg (never installed): that is the case to handle, not an error.
installed=$( (dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true) | awk '/install ok installed/ {print $1}')
missing=()
for p in "${PACKAGES[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
