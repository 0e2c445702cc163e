"""Checks a running scale-out stack (``docker-compose.scale.yml``) end to end:
the containers Docker started, reached the way a LIMS and an operator reach
them, with the outcomes of issue 20's replica tests measured on them.

    docker compose -f docker-compose.scale.yml --profile workers up -d --scale api=3
    python -m benchmarks.compose_scale [--project xrdid] [--json OUT]

Needs ``POSTGRES_PASSWORD`` and a write key in ``XRDID_WRITE_API_KEYS`` (as the
stack was started with), the ``docker`` command, and the proxy on
``--url`` (http://127.0.0.1:8000). The replicas and the database are reached
on their container addresses. What it does:

- every API replica and worker is ready, and the proxy answers;
- a real three-phase mixture is identified through the proxy, and the
  proxy's log shows which replicas answered a series of requests;
- a structure added on one replica is searchable on every other (seconds
  from the add's answer until each finds it first), and a delete on another
  reaches every replica;
- a batch job through the proxy, with the worker-only replica killed
  (SIGKILL) while it holds scans of it: the job completes, every scan
  answered once, the killed scans claimed again once, the others once;
- the database stopped for a few seconds under load: requests get 503 with
  Retry-After while it is down, and every replica answers again by itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from tests.e2e.support import rendered_query
from tests.postgres import held_scans
from xrdid.data_paths import shared_data_dir
from xrdid.references import prepare_structure
from xrdid.sticks import StickPattern

MIXTURE = Path("patterns/dara/precursor_mixtures/NiO_0p2030-Li2CO3_0p2999-TiO2_0p5025--8min.xrdml")
JOB_SCANS = Path("patterns/dara/precursor_mixtures")
STRUCTURE = Path("structures/elements/Cu.cif")
JOB_FILES = 24
# Two load threads, each a request per this many seconds: under the proxy limit.
PACE_S = 0.25


@dataclass(frozen=True)
class Container:
    name: str
    service: str
    image: str
    address: str
    host_pid: int
    hostname: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:8000"


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def containers(project: str) -> list[Container]:
    """The project's running containers, from Docker."""
    ids = _docker("ps", "-q", "--filter", f"label=com.docker.compose.project={project}").split()
    out = []
    for info in json.loads(_docker("inspect", *ids)) if ids else []:
        networks = info["NetworkSettings"]["Networks"]
        out.append(
            Container(
                name=info["Name"].lstrip("/"),
                service=info["Config"]["Labels"]["com.docker.compose.service"],
                image=info["Config"]["Image"],
                address=next(iter(networks.values()))["IPAddress"],
                host_pid=int(info["State"]["Pid"]),
                hostname=info["Config"]["Hostname"],
            )
        )
    return sorted(out, key=lambda c: c.name)


def _wait_ready(url: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.5)


def _size(url: str) -> int:
    return int(httpx.get(f"{url}/ready", timeout=10).json()["library_size"])


def _best_id(url: str, query: bytes) -> int | None:
    response = httpx.post(
        f"{url}/identify", files={"file": ("cu.xy", query)}, data={"phases": "false"}, timeout=60
    )
    response.raise_for_status()
    candidates = response.json()["candidates"]
    return int(candidates[0]["reference_id"]) if candidates else None


def _follow(url: str, size: int, query: bytes, found: bool, rid: int, timeout_s: float) -> float:
    """Seconds until the replica at ``url`` holds ``size`` references and
    (``found``) ranks ``rid`` first, or (not ``found``) does not."""
    start = time.monotonic()
    while _size(url) != size or (_best_id(url, query) == rid) != found:
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{url} did not follow within {timeout_s} s")
        time.sleep(0.01)
    return time.monotonic() - start


def check_follow(api: list[Container], auth: dict[str, str]) -> dict:
    cif = shared_data_dir() / STRUCTURE
    sticks = prepare_structure(cif.read_bytes(), cif.name).pattern
    assert isinstance(sticks, StickPattern)
    query = rendered_query(sticks)  # the added reference is its best match on any replica
    first, *others = api
    size = _size(first.url)
    created = httpx.post(
        f"{first.url}/references",
        files={"file": (cif.name, cif.read_bytes())},
        data={"source": "cod", "source_id": f"compose-check-{time.time_ns()}"},
        headers=auth,
        timeout=60,
    )
    created.raise_for_status()
    rid = int(created.json()["id"])
    added = {c.name: _follow(c.url, size + 1, query, True, rid, 30.0) for c in others}
    last = others[-1]
    deleted = httpx.delete(f"{last.url}/references/{rid}", headers=auth, timeout=60)
    deleted.raise_for_status()
    removed = {c.name: _follow(c.url, size, query, False, rid, 30.0) for c in api if c is not last}
    return {
        "added_on": first.name,
        "found_after_s": added,
        "deleted_on": last.name,
        "gone_after_s": removed,
    }


def check_identify(url: str, proxy: Container) -> dict:
    path = shared_data_dir() / MIXTURE
    scan = (path.name, path.read_bytes())
    response = httpx.post(f"{url}/identify", files={"file": scan}, timeout=120)
    response.raise_for_status()
    answer = response.json()
    time.sleep(1.0)  # nginx logs a request after its answer is sent
    since = datetime.now(UTC).isoformat()  # the proxy's log from here on: these 12
    for _ in range(12):
        httpx.post(
            f"{url}/identify",
            files={"file": scan},
            data={"phases": "false"},
            timeout=120,
        ).raise_for_status()
    log = _docker("logs", "--since", since, proxy.name)
    upstreams = Counter(line.split()[-1] for line in log.splitlines() if '"POST /identify"' in line)
    return {
        "verdict": answer["verdict"],
        "phases": [(p["reference"]["name"], p["weight_percent"]) for p in answer["phases"]],
        "replicas_answering_12_requests": dict(upstreams),
    }


def _held(database: str, job_id: str, hostname: str) -> list[int]:
    """The scans of the job the container ``hostname`` holds a claim on now."""
    return held_scans(database, job_id, f"jobs-{hostname}-%")


def check_worker_kill(url: str, worker: Container, database: str) -> dict:
    scans = sorted((shared_data_dir() / JOB_SCANS).glob("*.xrdml"))[:JOB_FILES]
    files = [("files", (p.name, p.read_bytes())) for p in scans]
    for _ in range(5):  # until the worker, among the replicas, holds scans of a job
        submitted = httpx.post(f"{url}/jobs", files=files, data={"top_k": "2"}, timeout=120)
        submitted.raise_for_status()
        job_id = submitted.json()["id"]
        while not (held := _held(database, job_id, worker.hostname)):
            job = httpx.get(f"{url}/jobs/{job_id}?results=false", timeout=30).json()
            if job["status"] == "completed":
                break
            time.sleep(0.005)
        if held:
            break
    else:
        raise RuntimeError("the worker never held scans of a job")
    os.kill(worker.host_pid, 9)  # SIGKILL from the host: no shutdown code runs
    killed_at = time.monotonic()
    held = _held(database, job_id, worker.hostname)
    while (job := httpx.get(f"{url}/jobs/{job_id}", timeout=60).json())["status"] != "completed":
        if time.monotonic() - killed_at > 300:
            raise TimeoutError(f"job {job_id} not completed: {job['progress']}")
        time.sleep(0.2)
    with psycopg.connect(database) as db:
        attempts: dict[int, int] = dict(
            db.execute("SELECT idx, attempts FROM job_file WHERE job_id = %s", (job_id,)).fetchall()
        )
    return {
        "files": len(scans),
        "succeeded": job["progress"]["succeeded"],
        "held_by_the_killed_worker": held,
        "attempts_of_those": {i: attempts[i] for i in held},
        "others_with_more_than_one_attempt": sorted(
            i for i, n in attempts.items() if n != 1 and i not in held
        ),
        "completed_after_kill_s": round(time.monotonic() - killed_at, 1),
    }


def check_database_restart(url: str, api: list[Container], postgres: Container) -> dict:
    path = shared_data_dir() / MIXTURE
    blob = path.read_bytes()
    # Scans in turn: each asks for other references than the last (a replica
    # answers from its caches what it read before, database or not).
    scans = [(p.name, p.read_bytes()) for p in sorted((shared_data_dir() / JOB_SCANS).glob("*"))]
    statuses: list[tuple[float, int, str | None]] = []  # (sent at, status, Retry-After)
    seconds: dict[int, list[float]] = {}  # each status's response times
    stop = threading.Event()

    def load(offset: int) -> None:
        with httpx.Client(timeout=60) as client:
            for i in itertools.count(offset, 2):
                if stop.is_set():
                    return
                sent = time.monotonic()
                r = client.post(
                    f"{url}/identify",
                    files={"file": scans[i % len(scans)]},
                    data={"phases": "false"},
                )
                statuses.append((sent, r.status_code, r.headers.get("retry-after")))
                seconds.setdefault(r.status_code, []).append(time.monotonic() - sent)
                time.sleep(PACE_S)  # under the proxy's 10 requests/s a client

    threads = [threading.Thread(target=load, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    _docker("stop", "-t", "10", postgres.name)
    down_at = time.monotonic()
    time.sleep(5.0)
    _docker("start", postgres.name)
    up_at = time.monotonic()
    recovered = {}
    try:
        for c in api:
            while True:
                try:
                    r = httpx.post(
                        f"{c.url}/identify",
                        files={"file": (path.name, blob)},
                        data={"phases": "false"},
                        timeout=60,
                    )
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() - up_at > 120:
                    raise TimeoutError(f"{c.name} did not recover")
                time.sleep(0.2)
            recovered[c.name] = round(time.monotonic() - up_at, 2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    during = [(code, retry) for at, code, retry in statuses if down_at + 0.5 < at < up_at]
    return {
        "status_codes": dict(Counter(code for _, code, _ in statuses)),
        "sent_while_down": dict(Counter(f"{code} retry-after={retry}" for code, retry in during)),
        "response_s_max": {code: round(max(t), 2) for code, t in seconds.items()},
        "replicas_answering_after_start_s": recovered,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="xrdid", help="the compose project's name")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the proxy")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    running = containers(args.project)
    by_service: dict[str, list[Container]] = {}
    for c in running:
        by_service.setdefault(c.service, []).append(c)
    api, workers = by_service.get("api", []), by_service.get("worker", [])
    if len(api) < 2 or not workers:
        raise SystemExit("start the stack with at least 2 API replicas and a worker (see above)")
    (postgres,), (proxy,) = by_service["postgres"], by_service["proxy"]
    auth = {"X-API-Key": os.environ["XRDID_WRITE_API_KEYS"].split(",")[0]}
    password = os.environ["POSTGRES_PASSWORD"]
    database = f"postgresql://xrdid:{password}@{postgres.address}:5432/xrdid"
    for c in api + workers:
        _wait_ready(c.url)
    _wait_ready(args.url)
    results = {
        "containers": {c.name: {"service": c.service, "image": c.image} for c in running},
        "identify": check_identify(args.url, proxy),
        "follow": check_follow(api, auth),
        "worker_kill": check_worker_kill(args.url, workers[0], database),
        "database_restart": check_database_restart(args.url, api, postgres),
    }
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if failed := failures(results):
        raise SystemExit("failed: " + "; ".join(failed))


def failures(results: dict) -> list[str]:
    """What the issue's targets refuse in ``results``."""
    out = []
    follow = results["follow"]
    if max([*follow["found_after_s"].values(), *follow["gone_after_s"].values()]) > 1.0:
        out.append("a replica followed an add or a delete after more than 1 s")
    kill = results["worker_kill"]
    if kill["succeeded"] != kill["files"]:
        out.append("scans of the job were lost")
    if set(kill["attempts_of_those"].values()) != {2} or kill["others_with_more_than_one_attempt"]:
        out.append("a scan was claimed more often than the kill explains")
    restart = results["database_restart"]
    if {int(code) for code in restart["status_codes"]} - {200, 503}:  # str keys once in JSON
        out.append(f"statuses other than 200 and 503: {restart['status_codes']}")
    for key in restart["sent_while_down"]:
        code, retry = key.split(" retry-after=")
        if code == "503" and retry == "None":
            out.append("a 503 without Retry-After while the database was down")
    return out


if __name__ == "__main__":
    main()
