#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY loads, one a line, sorted.
# The image's build stage runs it on the freshly built service so that the final stage installs exactly the
# runtime libraries that service needs (libgrpc++1.51, libpqxx-6.4, ...), with no list to keep in step by hand.
# tests/deploy/validate.sh runs it too, on the binaries of the build tree, so a library that no package claims
# is caught in CI rather than in a failed image build.
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}

# With merged /usr, ldd may name /lib/x86_64-linux-gnu/libfoo.so.1 where the package lists
# /usr/lib/x86_64-linux-gnu/libfoo.so.1 (or the other way round): try the path, its /usr twin and its target.
owner() {
  local lib=$1 candidate
  for candidate in "$lib" "/usr$lib" "${lib#/usr}" "$(readlink -f "$lib")"; do
    [ -n "$candidate" ] || continue
    if dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1; then return 0; fi
  done
  echo "runtime-packages: no Debian package holds $lib (needed by $binary)" >&2
  return 1
}

libs=$(ldd "$binary" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }')
if ldd "$binary" | grep -q 'not found'; then
  ldd "$binary" | grep 'not found' >&2
  exit 1
fi
packages=()
for lib in $libs; do
  package=$(owner "$lib") || exit 1
  packages+=("$package")
done
printf '%s\n' "${packages[@]}" | sort -u
