#!/bin/sh
# Copy the part of koffi that runs into OUT_DIR/node_modules: its JS entry
# points and the one prebuilt binary for the image's libc and CPU. The bundle
# (scripts/bundle.mjs) leaves koffi external; this is all it needs next to it.
# Sources, build scripts, docs and the other platforms' binaries stay behind.
# usage: koffi-runtime.sh NODE_MODULES OUT_DIR musl|glibc [CPU]
#   CPU is a Node process.arch name (x64, arm64, ...); default: this machine's.
set -eu
usage='usage: koffi-runtime.sh NODE_MODULES OUT_DIR musl|glibc [CPU]'
src=${1:?$usage}
out=${2:?$usage}
libc=${3:?$usage}
cpu=${4:-$(node -p process.arch)}
case $libc in
  musl) triplet=musl_$cpu ;;
  glibc) triplet=linux_$cpu ;;
  *) echo "koffi-runtime.sh: libc '$libc' is not musl or glibc" >&2; exit 2 ;;
esac
koffi=$src/koffi
prebuild=$src/@koromix/koffi-linux-$cpu
if [ ! -f "$koffi/package.json" ]; then
  echo "koffi-runtime.sh: no koffi in $src (run npm ci first)" >&2; exit 1
fi
if [ ! -f "$prebuild/$triplet/koffi.node" ]; then
  echo "koffi-runtime.sh: no prebuilt $triplet/koffi.node in $prebuild (npm ci --os=linux --cpu=$cpu installs it)" >&2; exit 1
fi

dest=$out/node_modules
mkdir -p "$dest/koffi/src/koffi/src" "$dest/@koromix/koffi-linux-$cpu/$triplet"
for f in package.json LICENSE.txt index.js index.cjs indirect.js indirect.cjs; do
  cp "$koffi/$f" "$dest/koffi/$f"
done
for f in index.js index.cjs indirect.js indirect.cjs; do
  cp "$koffi/src/koffi/$f" "$dest/koffi/src/koffi/$f"
done
for f in static.js static.cjs; do
  cp "$koffi/src/koffi/src/$f" "$dest/koffi/src/koffi/src/$f"
done
for f in package.json index.js; do
  cp "$prebuild/$f" "$dest/@koromix/koffi-linux-$cpu/$f"
done
cp "$prebuild/$triplet/koffi.node" "$dest/@koromix/koffi-linux-$cpu/$triplet/koffi.node"
echo "$dest/@koromix/koffi-linux-$cpu/$triplet/koffi.node"
