#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries BINARY loads, one a line, sorted.
# The image's build stage runs it on the freshly built service so that the final stage installs exactly the
# runtime libraries that service needs (libgrpc++1.51, libpqxx-6.4, ...), with no list to keep in step by hand.
# tests/deploy/validate.sh runs it too, on the binaries of the build tree, so a library that no package claims
# is caught in CI rather than in a failed image build.
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}

libs=$(ldd "$binary" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }')
if ldd "$binary" | grep -q 'not found'; then
  ldd "$binary" | grep 'not found' >&2
  exit 1
fi

# With merged /usr, ldd may name /lib/x86_64-linux-gnu/libfoo.so.1 where the package lists
# /usr/lib/x86_64-linux-gnu/libfoo.so.1 (or the other way round): ask about the path, its /usr twin and its
# target, all in one dpkg call (each call reads the whole package database).
candidates=()
for lib in $libs; do
  candidates+=("$lib" "/usr$lib" "${lib#/usr}" "$(readlink -f "$lib")")
done
owners=$(dpkg -S "${candidates[@]}" 2>/dev/null || true)  # "pkg:arch: /path" lines; unknown paths are skipped

{
  rc=0
  for lib in $libs; do
    package=""
    for candidate in "$lib" "/usr$lib" "${lib#/usr}" "$(readlink -f "$lib")"; do
      package=$(awk -v path="$candidate" '$NF == path { sub(/:.*/, "", $1); print $1; exit }' <<<"$owners")
      [ -n "$package" ] && break
    done
    if [ -z "$package" ]; then
      echo "runtime-packages: no Debian package holds $lib (needed by $binary)" >&2
      rc=1
    fi
    echo "$package"
  done
  exit "$rc"
} | sed '/^$/d' | sort -u
exit "${PIPESTATUS[0]}"
