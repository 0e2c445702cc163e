# One command each: install, serve, test, train, library, bench.
# Every target installs what it needs into .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install raman-library bench-raman-service serve test lint train evaluate ablation distortions rerank-weights library bench-preprocessing bench-service bench-hardening bench-scale fuzz vendor bench-jobs bench-identify-processes bench-job-batch bench-worker-kills bench-job-workers bench-pgvector openapi bench-raman raman-pack train-raman evaluate-raman

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch; any other spec pulls GBs of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The default Raman library (docs/raman.md): built from the RRUFF archive in
# the shared data (~1 min on 2 cores; 24.5 MB, so not kept in git). Without
# the archive the service starts with an empty Raman library.
RAMAN_LIBRARY = model_store/raman_library.sqlite
$(RAMAN_LIBRARY): model_store/raman_regnet1d.pt model_store/raman_split.json indexer/build_raman.py | $(BIN)/.installed
	nice -n 10 $(BIN)/python -m indexer build-raman --library $@ --skip-without-archive

install: $(BIN)/.installed $(RAMAN_LIBRARY)

# The service on the shipped default library: http://127.0.0.1:8000/docs
serve: install
	$(BIN)/python -m app

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench-preprocessing: install
	$(BIN)/python -m benchmarks.preprocessing --plots benchmarks/results/preprocessing

# The shipped checkpoint: 105 minutes of training on 2 CPU cores (see model card).
train: install
	$(BIN)/python -m indexer train --out runs/main --minutes 105

evaluate: install
	$(BIN)/python -m indexer evaluate --training-set runs/main/training_set.pkl --json runs/main/evaluation.json --card model_store/MODEL_CARD.md

# Stem stride, norm and intensity-scale variants, 6 minutes of training each (~35 min in all).
ablation: install
	$(BIN)/python -m indexer ablate --training-set runs/main/training_set.pkl --minutes 6 --markdown model_store/ABLATION.md

# What each distortion costs the shipped model (~3 min on 2 cores).
distortions: install
	$(BIN)/python -m indexer distortions --training-set runs/main/training_set.pkl --markdown model_store/DISTORTIONS.md

# The re-rank's weight and candidate count, on queries apart from the evaluation's (~4 min).
rerank-weights: install
	$(BIN)/python -m indexer rerank-weights --training-set runs/main/training_set.pkl --markdown model_store/RERANK.md

# Rebuild the shipped default library with the shipped model (~10 min on 2 cores).
library: install
	$(BIN)/python -m indexer build --rebuild --library model_store/library.sqlite \
		--model model_store/regnet1d.pt \
		../shared/data/structures \
		../shared/data/patterns/rockjock/rockjock_xrd.csv \
		--names ../shared/data/patterns/rockjock/rockjock_phases.csv --standard CORUNDUM

bench-service: install
	$(BIN)/python -m benchmarks.service

# 10k, 100k and 1M references side by side (the libraries are built once into
# runs/scale/, ~40 min for 1M on 2 cores), then the recall of approximate search.
bench-scale: install
	$(BIN)/python -m benchmarks.scale build
	$(BIN)/python -m benchmarks.scale serve --json benchmarks/results/scale-serve.json
	$(BIN)/python -m benchmarks.scale recall --json benchmarks/results/scale-recall.json

# The page's vendored browser libraries (app/static/vendor), from web/package-lock.json.
# Update: cd web && npm install --save-exact uplot@VERSION; then make vendor; commit both.
vendor:
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css app/static/vendor/
	cp web/node_modules/uplot/LICENSE app/static/vendor/uPlot.LICENSE

# Issue 17's targets on a real server: reads under writes, overload, metrics, uploads, slow senders (~3 min).
bench-hardening: install
	$(BIN)/python -m benchmarks.hardening

# Schemathesis on every endpoint, with and without a key, against a real server.
# --examples 400 made 4,065 requests (0 5xx, ~3 min); 2000 aims at 20,000.
fuzz: install
	$(BIN)/python -m tests.e2e.fuzz --examples 2000

# One POST /jobs of 200 real scans beside 200 sequential POST /identify calls (~5 min on 2 cores).
bench-jobs: install
	$(BIN)/python -m benchmarks.jobs --scans 200 --json benchmarks/results/jobs.json

# Crash safety of the shared queue: 20 trials of kill -9 of a worker holding a batch, on a
# PostgreSQL started for the run; every scan one outcome, none written twice (~4 min).
bench-worker-kills: install
	nice -n 10 $(BIN)/python -m benchmarks.worker_kills --trials 20 --scans 20 --json benchmarks/results/worker-kills.json

# 1, 2 and 4 worker processes on one PostgreSQL (started for the run), with numpy's BLAS at
# one thread (the service's default) and at two (OpenBLAS's own on 2 cores); then the queue alone (~8 min).
bench-job-workers: install
	nice -n 10 $(BIN)/python -m benchmarks.job_workers --workers 1 2 4 --blas-threads 2 1 --scans 120 --json benchmarks/results/job-workers.json

# FAISS in the replica against pgvector (exact, HNSW) on 100,000 embeddings (~3 min); needs the
# pgvector extension in the PostgreSQL (built from source here: docs/scale-out.md).
bench-pgvector: install
	nice -n 10 $(BIN)/python -m benchmarks.pgvector --json benchmarks/results/pgvector.json

# Concurrent /identify clients against a service computing on threads and in processes
# (XRDID_IDENTIFY_PROCESSES), at 10,000 references (~4 min).
bench-identify-processes: install
	$(BIN)/python -m benchmarks.identify_processes --json benchmarks/results/identify-processes.json

# Job batch size against throughput and the longest batch (an interactive request's wait), ~2 min.
bench-job-batch: install
	$(BIN)/python -m benchmarks.job_batch --sizes 1 4 16
	$(BIN)/python -m benchmarks.job_batch --sizes 1 4 16 --no-phases

# Refresh the committed API contract after adding to the API (docs/lims.md, versioning).
openapi: install
	$(BIN)/python -m app.contract write

# Raman (docs/raman-science.md): the preprocessing benchmark, the training pack, a
# training run (on a GPU: add DEVICE=cuda), and the evaluation + model card.
bench-raman: install
	$(BIN)/python -m benchmarks.raman_preprocessing --plots benchmarks/results/raman_preprocessing

# POST /identify for Raman spectra over HTTP on the built library, next to the hit quality index (~1 min).
bench-raman-service: install
	$(BIN)/python -m benchmarks.raman_service --requests 100

raman-pack: install
	$(BIN)/python -m indexer raman-pack --out runs/raman/pack.npz

DEVICE ?= cpu
train-raman: install
	$(BIN)/python -m indexer train-raman --pack runs/raman/pack.npz --minutes 5 --device $(DEVICE) --out runs/raman

evaluate-raman: install
	$(BIN)/python -m indexer evaluate-raman --model model_store/raman_regnet1d.pt

# Rebuild the default Raman library (make install builds it once).
raman-library: install
	$(BIN)/python -m indexer build-raman --library $(RAMAN_LIBRARY)
