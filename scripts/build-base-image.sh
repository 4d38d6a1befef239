#!/usr/bin/env bash
# Build a Debian base image for compose/Dockerfile on a machine that cannot pull from a registry:
# debootstrap a minimal system with Python 3 into a folder, then `docker import` it.
# The Debian mirror is read from this machine's own apt sources (or given with --mirror).
# Prints the image to pass as BASE_IMAGE. Does nothing when the image exists (--force rebuilds).
#
#   scripts/build-base-image.sh [--suite bookworm] [--tag bluegreen-base:bookworm] [--mirror URL] [--force]
set -euo pipefail

suite=""
tag=""
mirror="${MIRROR:-}"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$suite" ]; then
  # shellcheck disable=SC1091
  suite="$( . /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}" || true)"
  suite="${suite:-bookworm}"
fi
tag="${tag:-bluegreen-base:$suite}"

command -v docker >/dev/null || { echo "docker is not installed (apt-get install docker.io)" >&2; exit 3; }
docker info >/dev/null 2>&1 || { echo "no Docker engine answers; start dockerd first (see README)" >&2; exit 3; }
if [ "$force" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "BASE_IMAGE=$tag"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 3; }
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; exit 3; }

mirror_from_apt_sources() {
  # deb822 files: the URIs of a stanza whose Suites list $suite; one-line files: `deb URI SUITE ...`.
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && has) { print uri; exit } uri = ""; has = 0; next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { if (uri != "" && has) print uri }' "$file"
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk -v suite="$suite" '$1 == "deb" { u = 2; if ($2 ~ /^\[/) { while ($u !~ /\]$/) u++; u++ } if ($(u + 1) == suite) print $u }' "$file"
  done
}
if [ -z "$mirror" ]; then
  mirror="$(mirror_from_apt_sources | head -n 1)"
fi
[ -n "$mirror" ] || { echo "no apt source for '$suite' found; pass --mirror URL" >&2; exit 3; }

root="$(mktemp -d /tmp/bluegreen-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "== debootstrap $suite (minbase + python3) into $root"
# libgomp1: llama.cpp's OpenMP runtime; nginx: the nginx service; ca-certificates: TLS for webhooks.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1,nginx \
  "$suite" "$root" "$mirror" | grep --line-buffered -E '^I: (Retrieving|Validating|Extracting|Installing|Configuring|Base system)' \
  | awk '{ n++; if (n % 25 == 1 || /Base system/) print; fflush() }'
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
echo "== docker import $tag"
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "BASE_IMAGE=$tag"
