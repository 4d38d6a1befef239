#!/usr/bin/env bash
# The unattended model update: `bluegreen update` for cron or a systemd timer, its output appended
# to a log file, its exit code passed through (0 updated or already current / already rejected,
# 2 rejected now, 1 could not run). A run that finds another one still going exits 1 at once.
#
#   BLUEGREEN_ADMIN_TOKEN=... UPDATE_SOURCE=https://models.example/saiga/models.json UPDATE_NAME=saiga \
#     UPDATE_MODELS_DIR=/srv/models scripts/auto-update.sh [more `bluegreen update` flags, e.g. --steps 5,25,50,100]
#
# Environment: UPDATE_SOURCE, UPDATE_NAME, UPDATE_MODELS_DIR (required); BLUEGREEN_ROUTER
# (default http://127.0.0.1:8080); UPDATE_LOG (default runs/auto-update.log); UPDATE_ENV_FILE, a file
# of KEY=value lines read first (the systemd unit and the crontab point it at /etc/bluegreen/auto-update.env).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${UPDATE_ENV_FILE:-}" ]; then
  if [ ! -r "$UPDATE_ENV_FILE" ]; then
    echo "auto-update: cannot read UPDATE_ENV_FILE=$UPDATE_ENV_FILE" >&2
    exit 1
  fi
  set -a
  # shellcheck disable=SC1090
  . "$UPDATE_ENV_FILE"
  set +a
fi

LOG=${UPDATE_LOG:-runs/auto-update.log}
BLUEGREEN=${BLUEGREEN:-.venv/bin/bluegreen}
[ -x "$BLUEGREEN" ] || BLUEGREEN=bluegreen
ROUTER=${BLUEGREEN_ROUTER:-http://127.0.0.1:8080}

missing=""
for name in UPDATE_SOURCE UPDATE_NAME UPDATE_MODELS_DIR BLUEGREEN_ADMIN_TOKEN; do
  [ -n "${!name:-}" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "auto-update: set$missing (see the top of $0)" >&2
  exit 1
fi

mkdir -p "$(dirname "$LOG")"
{
  echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC') update $UPDATE_NAME from $UPDATE_SOURCE via $ROUTER"
  set +e
  COLUMNS=${COLUMNS:-160} "$BLUEGREEN" update --router "$ROUTER" --source "$UPDATE_SOURCE" --name "$UPDATE_NAME" \
    --models-dir "$UPDATE_MODELS_DIR" --yes "$@"
  outcome=$?
  set -e
  case $outcome in
    0) echo "== done: updated, or nothing new (exit 0)" ;;
    2) echo "== rejected: the new model failed its checksum or its cutover; the old one serves (exit 2)" ;;
    *) echo "== could not run (exit $outcome): source, disk, lock, router or arguments" ;;
  esac
  exit $outcome
} >> "$LOG" 2>&1
