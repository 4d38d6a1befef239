#!/usr/bin/env bash
# The operator's cutover: check blue, start the router if none answers, run `bluegreen cutover`,
# print the report. Exit 0 promoted; 2 the new colour was rejected (start or warm-up failed, or
# rolled back); 1 the cutover could not run (router, token, a rollout under way, arguments).
#
#   BLUEGREEN_ADMIN_TOKEN=... scripts/cutover.sh [bluegreen cutover flags, e.g. --steps 5,25,50,100 --interval 60]
#
# Environment: BLUE_URL (default http://127.0.0.1:8001), GREEN_URL (http://127.0.0.1:8002),
# BLUEGREEN_ROUTER (http://127.0.0.1:8080), BLUEGREEN_STATE (runs/bluegreen.db). A router started
# here keeps serving after the cutover (it is the shared endpoint); its PID is in runs/router.pid.
set -euo pipefail
cd "$(dirname "$0")/.."

BLUE_URL=${BLUE_URL:-http://127.0.0.1:8001}
GREEN_URL=${GREEN_URL:-http://127.0.0.1:8002}
ROUTER=${BLUEGREEN_ROUTER:-http://127.0.0.1:8080}
STATE=${BLUEGREEN_STATE:-runs/bluegreen.db}
BLUEGREEN=${BLUEGREEN:-.venv/bin/bluegreen}
[ -x "$BLUEGREEN" ] || BLUEGREEN=bluegreen
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

if [ -z "${BLUEGREEN_ADMIN_TOKEN:-}" ]; then
  echo "cutover: set BLUEGREEN_ADMIN_TOKEN (the router's admin token) first" >&2
  exit 1
fi

ready() {  # ready URL -> 0 when GET URL/ready answers 200
  "$PYTHON" -c 'import sys, httpx
try:
    sys.exit(0 if httpx.get(sys.argv[1] + "/ready", timeout=3).status_code == 200 else 1)
except httpx.HTTPError:
    sys.exit(1)' "$1"
}

echo "== blue  $BLUE_URL"
if ! ready "$BLUE_URL"; then
  echo "cutover: blue is not ready at $BLUE_URL; the stable colour must serve before any cutover" >&2
  exit 1
fi
echo "== green $GREEN_URL"
ready "$GREEN_URL" || echo "   green is not ready yet; the rollout waits for it (start timeout applies)"

echo "== router $ROUTER"
if ! ready "$ROUTER"; then
  port=${ROUTER##*:}
  port=${port%%/*}
  mkdir -p runs
  echo "   no router answers; starting one on port $port (log: runs/router.log)"
  nohup "$BLUEGREEN" serve --blue "$BLUE_URL" --green "$GREEN_URL" --port "$port" --state "$STATE" \
    >> runs/router.log 2>&1 &
  echo $! > runs/router.pid
  for _ in $(seq 1 100); do
    ready "$ROUTER" && break
    sleep 0.2
  done
  ready "$ROUTER" || { echo "cutover: the router did not start; see runs/router.log" >&2; exit 1; }
  echo "   router running, PID $(cat runs/router.pid)"
fi

set +e
"$BLUEGREEN" cutover --router "$ROUTER" "$@"
outcome=$?
set -e
echo "== report"
"$BLUEGREEN" status --router "$ROUTER" || true
case $outcome in
  0) echo "== promoted: every session is on the new colour" ;;
  2) echo "== rejected: the new colour failed to start, failed its warm-up or was rolled back; every session is on the stable colour (see the events above)" ;;
  *) echo "== the cutover could not run (exit $outcome): router, token, a rollout already under way, or arguments" ;;
esac
exit $outcome
