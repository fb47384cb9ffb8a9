#!/bin/sh
# The base image (NODE_IMAGE) must have node on PATH, at a version package.json's
# engines allow; otherwise the build stops here with one line saying so.
# usage: check-node.sh PACKAGE_JSON
set -eu
pkg=${1:?usage: check-node.sh PACKAGE_JSON}
want=$(sed -n 's/^ *"node": *">= *\([0-9][0-9]*\).*/\1/p' "$pkg")
if [ -z "$want" ]; then
  echo "check-node.sh: no engines.node \">=N\" in $pkg" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1; then
  echo "molt: the base image has no node on PATH: NODE_IMAGE must be a Node image with node >=$want (e.g. node:24-alpine)" >&2
  exit 1
fi
have=$(node --version 2>/dev/null) || have=
major=${have#v}
major=${major%%.*}
case $major in
  '' | *[!0-9]*)
    echo "molt: the base image's node does not say its version (node --version: '$have'): molt needs node >=$want" >&2
    exit 1
    ;;
esac
if [ "$major" -lt "$want" ]; then
  echo "molt: the base image's node is $have, molt needs node >=$want (package.json engines): use a newer NODE_IMAGE (e.g. node:24-alpine)" >&2
  exit 1
fi
