#!/bin/sh
# Print the C library the base image's node runs on, musl or glibc, so that the
# build keeps koffi's prebuilt binary for it. Never assumed: node's own report
# names the glibc it runs on; a musl system has its loader at /lib/ld-musl-*.
# usage: libc.sh [ROOT]   (ROOT: where to look for the musl loader; default /)
set -eu
root=${1:-}
# excludeNetwork: the report need not look up network interfaces (slow without a network).
glibc=$(node -p 'process.report.excludeNetwork = true; process.report.getReport().header.glibcVersionRuntime || ""' 2>/dev/null) || glibc=
if [ -n "$glibc" ]; then
  echo glibc
  exit 0
fi
for loader in "$root"/lib/ld-musl-*.so.1; do
  if [ -e "$loader" ]; then
    echo musl
    exit 0
  fi
done
echo "libc.sh: cannot tell the base image's C library: node reports no glibc and there is no /lib/ld-musl-*.so.1" >&2
exit 1
