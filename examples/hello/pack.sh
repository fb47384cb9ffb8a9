#!/bin/sh
# Pack the hello app as a molt release: OUT/<version>.tar.gz plus a SHA256SUMS
# line for it. Usage: pack.sh VERSION OUT_DIR [ok|crash|exit|hang]
set -eu
version=${1:?usage: pack.sh VERSION OUT_DIR [ok|crash|exit|hang]}
out=${2:?usage: pack.sh VERSION OUT_DIR [ok|crash|exit|hang]}
behaviour=${3:-ok}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/release" "$out"
cp "$here/server.mjs" "$work/release/server.mjs"
printf '%s\n' "$version" > "$work/release/VERSION"
printf '%s\n' "$behaviour" > "$work/release/behaviour"
if [ "$behaviour" = exit ]; then
  # A release that cannot even start: its run exits at once.
  printf '#!/bin/sh\necho "hello %s: cannot start"\nexit 3\n' "$version" > "$work/release/run"
else
  cat > "$work/release/run" <<'RUN'
#!/bin/sh
exec node ./server.mjs
RUN
fi
chmod 755 "$work/release/run"
tar -C "$work/release" -czf "$work/$version.tar.gz" .
mv "$work/$version.tar.gz" "$out/$version.tar.gz"
(cd "$out" && sha256sum "$version.tar.gz" >> SHA256SUMS.new && { grep -v " $version.tar.gz\$" SHA256SUMS 2>/dev/null || true; cat SHA256SUMS.new; } > SHA256SUMS.tmp && rm SHA256SUMS.new && mv SHA256SUMS.tmp SHA256SUMS)
echo "$out/$version.tar.gz"
