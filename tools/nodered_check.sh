#!/usr/bin/env bash
# The Watson tutorial through IBM's Node-RED nodes (their SDK alone, then the nodes in Node-RED 4) against a
# real `workbench serve` with API keys on.
# Not part of CI: it needs the npm packages, installed once by hand, e.g.
#   mkdir -p /tmp/nr && cd /tmp/nr && npm init -y && npm i node-red@4 node-red-node-watson@0.7.8
# Then: NODE_MODULES=/tmp/nr/node_modules bash tools/nodered_check.sh   (uses `python` and `node` on PATH)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NODE_MODULES="${NODE_MODULES:-/tmp/nr/node_modules}"
PYTHON="${PYTHON:-python}"
PORT="${PORT:-18931}"
WORK="$(mktemp -d)"
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

KEY="$("$PYTHON" -m workbench --home "$WORK/home" keys add me 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
"$PYTHON" - "$ROOT/data/tutorial" "$WORK/zips" <<'PY'
import sys
from pathlib import Path
from workbench.cli import zip_folder
tutorial, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir()
for name in ("beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats"):
    zip_folder(tutorial / name, out / f"{name}.zip")
PY
"$PYTHON" -m workbench --home "$WORK/home" serve --port "$PORT" > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 240); do
  curl -fs "http://127.0.0.1:$PORT/v3/classifiers?version=2018-03-19&api_key=$KEY" > /dev/null && break
  sleep 1
done
status=0
for check in nodered_check.js nodered_flow_check.js; do  # the SDK alone, then the nodes inside Node-RED
  echo "== $check"
  NODE_PATH="$NODE_MODULES" WORKBENCH_URL="http://127.0.0.1:$PORT" WORKBENCH_KEY="$KEY" ZIPS="$WORK/zips" \
    TUTORIAL="$ROOT/data/tutorial" node "$ROOT/tools/$check" || status=$?
done
echo "access log: $(grep -c 'api_key=REDACTED' "$WORK/server.log") requests with api_key=REDACTED;" \
     "the key itself appears $(grep -c -- "$KEY" "$WORK/server.log" || true) times"
exit $status
