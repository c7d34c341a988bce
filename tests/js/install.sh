#!/usr/bin/env bash
# Installs the Node clients used by the integration tests (official TypeScript SDK, mcp-remote) from
# package-lock.json. Idempotent: does nothing when node_modules matches the lock. Needs node >= 20 + npm.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.lock-stamp
want=$(sha256sum package-lock.json | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
