#!/usr/bin/env bash
# Vendors Swagger UI (npm `swagger-ui-dist`, pinned below) into swagger-ui/: the files the
# /docs page serves from the tokens binary, with their licences. The page loads nothing
# from elsewhere at run time. Bumping the version: change VERSION and INTEGRITY (from
# `npm view swagger-ui-dist@<v> dist.integrity`), run this, look at /docs, commit.
set -euo pipefail
VERSION=5.35.0
INTEGRITY="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
FILES=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tgz="$tmp/swagger-ui-dist-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [[ "$got" != "$INTEGRITY" ]]; then
  echo "swagger-ui-dist@$VERSION: integrity $got, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp"
mkdir -p "$here/swagger-ui"
for f in "${FILES[@]}"; do cp "$tmp/package/$f" "$here/swagger-ui/$f"; done
echo "$VERSION" >"$here/swagger-ui/VERSION"
echo "vendored swagger-ui-dist@$VERSION into $here/swagger-ui"
