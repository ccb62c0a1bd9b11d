#!/usr/bin/env bash
# The contracts kept clean: `buf lint` (STANDARD, see proto/buf.yaml) over proto/ptd, and `buf breaking`
# against the baseline image proto/baseline.binpb, so that an accidental wire, JSON or source break of a
# published contract fails the build.
#
#   tests/contracts/check.sh WORK_DIR              lint and breaking check (ctest: contracts.lint, contracts.breaking)
#   tests/contracts/check.sh WORK_DIR --baseline   writes proto/baseline.binpb from the contracts as they are now:
#                                                  only on purpose, when a break is intended (say why in the commit)
#
# buf reads an image that protoc builds (Debian's protoc, the googleapis protos from Debian's
# golang-github-gogo-googleapis-dev): no module registry is reached. buf itself comes from npm (@bufbuild/buf,
# the version in package.json), installed once into WORK_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:?usage: check.sh WORK_DIR [--lint|--breaking|--baseline]}
mode=${2:-all}
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
mkdir -p "$work/node"

if [ ! -x "$work/node/node_modules/.bin/buf" ] || ! cmp -s "$here/package-lock.json" "$work/node/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/node/"
  (cd "$work/node" && npm ci --no-audit --no-fund --prefer-offline --cache "$work/npm-cache" >/dev/null)
fi
buf=$work/node/node_modules/.bin/buf

# One image of every contract, with its imports and source info (for the lint's line numbers).
image() {
  local out=$1
  (cd "$root/proto" && protoc -I. -I"$googleapis" -I/usr/include --include_imports --include_source_info \
    -o "$out" $(find ptd -name '*.proto' | sort))
}
image "$work/image.binpb"

case "$mode" in
  all|--lint|--breaking) ;;
  --baseline)
    (cd "$root/proto" && protoc -I. -I"$googleapis" -I/usr/include --include_imports \
      -o "$root/proto/baseline.binpb" $(find ptd -name '*.proto' | sort))
    echo "contracts: wrote proto/baseline.binpb"
    exit 0 ;;
  *) echo "check.sh: unknown mode $mode" >&2; exit 2 ;;
esac

if [ "$mode" != --breaking ]; then
  "$buf" lint "$work/image.binpb" --config "$root/proto/buf.yaml" --path ptd
  echo "contracts: buf lint clean"
fi
if [ "$mode" != --lint ]; then
  "$buf" breaking "$work/image.binpb" --against "$root/proto/baseline.binpb" --config "$root/proto/buf.yaml" --path ptd
  echo "contracts: no breaking change against proto/baseline.binpb"
fi
