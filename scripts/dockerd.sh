#!/usr/bin/env bash
# Start a Docker engine on a machine that has dockerd but runs none (no systemd): host networking
# only (--bridge=none --iptables=false), logs in runs/dockerd.log, PID in runs/dockerd.pid.
# `stop` stops only the engine this script started, by that PID.
#
#   scripts/dockerd.sh start    # prints "running" (one answered already) or "started PID"; exit 3 if it cannot
#   scripts/dockerd.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
pid_file=runs/dockerd.pid

answers() { docker info >/dev/null 2>&1; }

case "${1:-start}" in
  start)
    if answers; then echo "running"; exit 0; fi
    command -v dockerd >/dev/null || { echo "dockerd is not installed (apt-get install docker.io)" >&2; exit 3; }
    [ "$(id -u)" -eq 0 ] || { echo "dockerd needs root" >&2; exit 3; }
    setsid dockerd --bridge=none --iptables=false --ip6tables=false >runs/dockerd.log 2>&1 < /dev/null &
    echo $! > "$pid_file"
    for _ in $(seq 1 120); do
      if answers; then echo "started $(cat "$pid_file")"; exit 0; fi
      kill -0 "$(cat "$pid_file")" 2>/dev/null || break
      sleep 0.5
    done
    echo "dockerd did not come up; the end of runs/dockerd.log:" >&2
    tail -n 15 runs/dockerd.log >&2
    exit 3
    ;;
  stop)
    [ -f "$pid_file" ] || { echo "no engine started by this script"; exit 0; }
    pid="$(cat "$pid_file")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pid_file"
    echo "stopped $pid"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
