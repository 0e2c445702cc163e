# syntax=docker/dockerfile:1
# The xrdid service. CPU image by default:
#   docker build -t xrdid .
# CUDA image (torch wheels bundle the CUDA runtime; run with --gpus all):
#   docker build --build-arg TORCH_VARIANT=cu128 -t xrdid:cuda .
# The model checkpoint and the default library (model_store/) are baked in;
# the working library lives on the /data volume. The default Raman library
# is baked in when `make install` built it first (docs/raman.md); the working
# one is /data/raman_library.sqlite, next to the XRD one.

ARG PYTHON_VERSION=3.11
# Another base image with that Python (a registry mirror's, a site's own).
ARG PYTHON_IMAGE=python:${PYTHON_VERSION}-slim

FROM ${PYTHON_IMAGE} AS runtime

# cpu, or a CUDA build of torch such as cu126 / cu128 (download.pytorch.org/whl/<variant>)
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
# Where that build is downloaded from (a mirror of the PyTorch index).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/xrdid

# torch first, from its own index: the variant decides CPU or CUDA, and the
# project's torch==2.13.0 requirement is then already satisfied.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# Dependencies before the code, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p xrdid indexer app \
    && touch xrdid/__init__.py indexer/__init__.py app/__init__.py \
    && pip install . \
    && pip uninstall -y xrdid \
    && rm -rf xrdid indexer app build ./*.egg-info

COPY xrdid ./xrdid
COPY indexer ./indexer
COPY app ./app
COPY model_store ./model_store

RUN useradd --system --uid 10001 --home-dir /srv/xrdid xrdid \
    && mkdir -p /data \
    && chown xrdid /data

# The code runs from /srv/xrdid (not site-packages), so the paths below and
# xrdid.data_paths.PROJECT_ROOT agree.
ENV PYTHONPATH=/srv/xrdid \
    XRDID_ENVIRONMENT=production \
    XRDID_HOST=0.0.0.0 \
    XRDID_PORT=8000 \
    XRDID_LIBRARY_PATH=/data/library.sqlite \
    XRDID_DEFAULT_LIBRARY_PATH=/srv/xrdid/model_store/library.sqlite \
    XRDID_MODEL_PATH=/srv/xrdid/model_store/regnet1d.pt

USER xrdid
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

CMD ["python", "-m", "app"]
