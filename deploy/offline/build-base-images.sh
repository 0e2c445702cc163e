#!/bin/sh
# Builds the images the compose files start from (python, postgres, nginx)
# out of Debian packages, for a Docker host that cannot pull from Docker
# Hub but reaches a Debian mirror (docs/operations.md, "Without Docker Hub").
#
#   sudo deploy/offline/build-base-images.sh
#
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian), CA_BUNDLE (the
# host's /etc/ssl/certs/ca-certificates.crt: a site proxy's CA goes into the
# python image), PIP_INDEX_URL and PIP_EXTRA_INDEX_URL (the python image's).
# Needs debootstrap and root. Tags: local/python:3.11-slim,
# local/postgres:15, local/nginx:1.30.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for suite in bookworm sid; do
    debootstrap --variant=minbase "$suite" "$work/$suite" "$mirror"
    tar -C "$work/$suite" -c . | docker import - "local/debian:$suite"
done
mkdir "$work/context"
cp "$here"/*.Dockerfile "$here/postgres-entrypoint.sh" "$work/context/"
cp "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$work/context/ca-certificates.crt"
docker build --network host -t local/python:3.11-slim -f "$work/context/python.Dockerfile" \
    --build-arg "PIP_INDEX_URL=${PIP_INDEX_URL:-https://pypi.org/simple}" \
    --build-arg "PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL:-}" "$work/context"
docker build -t local/postgres:15 -f "$work/context/postgres.Dockerfile" "$work/context"
docker build -t local/nginx:1.30 -f "$work/context/nginx.Dockerfile" "$work/context"
