#!/usr/bin/env bash
# Install the system tools the tests use (Prometheus, nginx, a Docker engine, debootstrap for the
# offline base image, docker-compose to validate the compose files, kubectl to render the Kubernetes
# manifests, chromium and its chromedriver for the console's browser tests) when missing, then create
# .venv and install the project with every engine, once per pyproject.toml version.
# Idempotent: a second run with the tools present and an unchanged pyproject.toml does nothing. llama-cpp-python is
# compiled from source the first time (10-15 minutes on 2 cores); pip keeps the built wheel in
# its cache, so later set-ups (fresh clones included) reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(prometheus nginx docker.io debootstrap docker-compose chromium chromium-driver)
# kubectl renders compose/kubernetes/ (it needs kubectl 1.21+). Debian's package is kubernetes-client, 1.20 on
# bookworm, too old (tests/e2e/test_kubernetes.py says so); a kubectl already installed is kept.
command -v kubectl >/dev/null 2>&1 || SYSTEM_PACKAGES+=(kubernetes-client)
missing=()
for tool in prometheus promtool nginx dockerd debootstrap docker-compose kubectl chromium chromedriver; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${SYSTEM_PACKAGES[*]} (missing: ${missing[*]})"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The packages' own services are not started: the tests start their own (on loopback ports;
  # dockerd through scripts/dockerd.sh when none runs).
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${SYSTEM_PACKAGES[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

if [ -f "$stamp" ]; then
  exit 0
fi
echo "== setting up $VENV (first run compiles llama-cpp-python; later runs reuse pip's cache)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip wheel
# The CPU build of torch; any other spec would download a multi-GB CUDA build.
"$VENV/bin/pip" install --quiet "torch==2.13.0"
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install --progress-bar off -e ".[llama,vistral,docker,dev]"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "== $VENV ready"
