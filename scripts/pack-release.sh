#!/bin/sh
# Pack the app release that the release workflow attaches to a GitHub release
# and pushes with `molt publish`: OUT_DIR/hello-VERSION.tar.gz and a fresh
# OUT_DIR/SHA256SUMS naming it. The app is the hello example (examples/hello);
# a repository that ships its own app replaces the pack step below with its
# build, keeping the two outputs: one <name>-<version>.tar.gz with a `run` at
# its top, and SHA256SUMS.
# usage: pack-release.sh VERSION OUT_DIR
set -eu
usage='usage: pack-release.sh VERSION OUT_DIR'
version=${1:?$usage}
out=${2:?$usage}
case $version in
  v[0-9]*) version=${version#v} ;;
esac
if ! printf '%s\n' "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'; then
  echo "pack-release.sh: '$version' is not a semver version (e.g. 1.2.3 or 1.3.0-rc.1)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/examples/hello/pack.sh" "$version" "$work" >/dev/null
mkdir -p "$out"
name="hello-$version.tar.gz"
mv "$work/$version.tar.gz" "$out/$name"
(cd "$out" && sha256sum "$name" > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
echo "$out/$name"
