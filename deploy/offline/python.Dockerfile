# A stand-in for python:3.11-slim from Debian bookworm's packages (Python
# 3.11): the image xrdid's Dockerfile builds on (PYTHON_IMAGE).
FROM local/debian:bookworm
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_EXTRA_INDEX_URL=
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv python-is-python3 \
    && rm -rf /var/lib/apt/lists/*
# The site's CA bundle (a proxy that re-signs TLS) and package index; pip
# installs into the system Python, as it does in python:3.11-slim.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN printf '[global]\nbreak-system-packages = true\ncert = /etc/ssl/certs/ca-certificates.crt\nindex-url = %s\n' \
        "$PIP_INDEX_URL" > /etc/pip.conf \
    && if [ -n "$PIP_EXTRA_INDEX_URL" ]; then \
        printf 'extra-index-url = %s\n' "$PIP_EXTRA_INDEX_URL" >> /etc/pip.conf; fi
