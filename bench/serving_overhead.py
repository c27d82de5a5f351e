"""Serving overhead: `POST /invocations` against the raw model forward of the same image.

Set-up: the demo's model (the spec `train` derives from the demo hyperparameters and the
synthetic categories; untrained, seeded weights) written as `train` writes `model/`, and one
synthetic test image of the demo's size. The container's `serve` program runs on 127.0.0.1 on a
free port with one worker and the same torch thread count as this process
(`MODEL_SERVER_WORKERS=1`, `MODEL_SERVER_THREADS`); nginx fronts it only when it is installed.

After the same warm-up for both (5 forwards, 5 requests: the first forwards at a new image
shape cost extra), per round, side by side and alternating one by one: a raw forward in this
process (`model([tensor])` under `torch.inference_mode()`, with the score threshold the server
applies to the request, on the predictor's inference thread, as the server runs it), then one
request at concurrency 1 (`bench.load_client.post_once`, a new connection per request, from this
process while it does nothing else). The p50 overhead ratio is the median over rounds of
p50(HTTP) / p50(raw). The CPU time of each side is read too (this process's `process_time`, the
serve process tree's `/proc/<pid>/stat`), which tells work from waiting for a CPU. Then one
bounded run at concurrency 4 from a second process (`bench.load_client`) gives requests/s under
load (one worker runs one inference at a time). Where the target is missed, py-spy samples the
serve process tree during one more batch.

Where the time goes is measured in the same process: the predictor (`Predictor.predict`: to
tensor, forward, RLE of the masks) and the Flask app through its test client (request parsing,
image decoding, JSON) add their layers over the raw forward; the HTTP figure adds gunicorn, the
socket and the client.

Targets: p50 overhead ratio at most 1.10 at concurrency 1, and p50 at most 60 ms for the demo
model on its 96-px images, which it scales to 128 px (issue 14).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    BenchSettings,
    Figure,
    Measurement,
    at_most,
    clean_env,
    median,
    percentile,
    python_argv,
    summary,
)
from bench.load_client import post_once
from bench.profiling import (
    describe_profile,
    process_shares,
    share_of,
    start_attached,
    stop_attached,
)
from workflow.http import answers_ok

NAME = "serving_overhead"
TITLE = "Serving overhead"
TARGET_RATIO = 1.10
TARGET_P50_MS = 60.0
START_TIMEOUT_S = 180
LOAD_MAX_SECONDS = 90.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_model(folder: Path, settings: BenchSettings) -> tuple[Path, Path, float]:
    """Write the demo model as `train` writes `model/`, and one test image.

    Returns:
        (the SAGEMAKER_BASE_DIR, the test image, the model's score threshold).
    """
    import torch
    import torchvision
    from mask_r_cnn.data import load_channel
    from mask_r_cnn.hyperparams import parse_hyperparameters
    from mask_r_cnn.model import build_model
    from mask_r_cnn.synthetic import generate
    from mask_r_cnn.train import build_spec

    from bench.train_throughput import demo_hyperparameters

    hyperparameters, size, _ = demo_hyperparameters(settings.repo_root)
    if settings.smoke:
        size = 64
        hyperparameters.update(min_size="64", max_size="64", fast="true")
    config = parse_hyperparameters(hyperparameters)
    data = folder / "data"
    generate(data, train=1, validation=0, test=1, size=size, seed=0)
    index = load_channel(data / "train", "training")
    spec = build_spec(config, index, pretrained=False)
    torch.manual_seed(config.seed)
    model = build_model(spec)
    base_dir = folder / "ml"
    model_dir = base_dir / "model"
    model_dir.mkdir(parents=True)
    torch.save(model.state_dict(), model_dir / "model.pth")
    metadata = {
        "format": 1,
        "model": spec.to_dict(),
        "categories": [
            {"id": c.id, "name": c.name, "label": index.label_of[c.id]} for c in index.categories
        ],
        "score_threshold": config.score_threshold,
        "hyperparameters": config.as_strings(),
        "source_commit": "bench",
        "training_job_name": "bench-serving-overhead",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    test = json.loads((data / "test" / "annotations.json").read_text(encoding="utf-8"))
    image = data / "test" / test["images"][0]["file_name"]
    return base_dir, image, float(config.score_threshold)


@contextlib.contextmanager
def serving(base_dir: Path, threads: int, repo_root: Path, log: Path) -> Iterator[tuple[str, int]]:
    """Run the container's `serve` on 127.0.0.1 until the block ends; yield its URL and pid.

    Raises:
        BenchError: it exited or did not answer /ping with 200 within START_TIMEOUT_S.
    """
    port = free_port()
    env = clean_env(
        {
            "SAGEMAKER_BASE_DIR": str(base_dir),
            "SAGEMAKER_BIND_TO_HOST": "127.0.0.1",
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "MODEL_SERVER_WORKERS": "1",
            "MODEL_SERVER_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
        }
    )
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            python_argv(str(repo_root / "container" / "mask_r_cnn" / "serve")),
            cwd=repo_root,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_healthy(url, process, log)
            yield url, process.pid
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            raise BenchError(
                f"serve exited with code {process.returncode} before answering /ping ({tail}); "
                "run container/mask_r_cnn/serve by hand with the same model folder"
            )
        if answers_ok(url + "/ping", timeout=5):
            return
        time.sleep(0.25)
    raise BenchError(
        f"serve did not answer /ping within {START_TIMEOUT_S} s; the machine may be overloaded, "
        "see the serve log"
    )


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its descendants (Linux only)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        entries = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in entries:
        fields = _proc_stat(pid)
        if fields is None:
            continue
        parents[pid] = int(fields[1])  # ppid
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    if root not in cpu:
        return None
    total = 0.0
    for pid, seconds in cpu.items():
        node = pid
        while node and node != root:
            node = parents.get(node, 0)
        if node == root:
            total += seconds
    return total


def load(url: str, image: Path, concurrency: int, requests: int, repo_root: Path) -> dict[str, Any]:
    """Run `bench.load_client` as a second process and return its JSON result.

    Raises:
        BenchError: the client failed or a request failed.
    """
    argv = python_argv(
        "-m",
        "bench.load_client",
        "--url",
        url,
        "--image",
        str(image),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--max-seconds",
        str(LOAD_MAX_SECONDS),
    )
    result = subprocess.run(
        argv,
        cwd=repo_root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=LOAD_MAX_SECONDS + 120,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"the load client failed: {result.stderr.strip()[-300:]}")
    answer: dict[str, Any] = json.loads(result.stdout)
    if answer["errors"] or not answer["completed"]:
        raise BenchError(
            f"{answer['errors']} of the requests at concurrency {concurrency} failed "
            f"({answer['error_samples']}); look at the serve log"
        )
    return answer


class InProcess:
    """The raw model, the predictor and the Flask app of the same model folder, in-process.

    All torch work runs on the predictor's inference thread, the raw forward included: a
    second thread running torch kernels would give libgomp more threads than CPUs and slow
    every forward by half (see `Predictor`).
    """

    def __init__(self, base_dir: Path, image: Path, threshold: float, threads: int) -> None:
        """Load the model twice (raw and predictor) and the app; decode the image once."""
        from mask_r_cnn.predictor import Predictor, create_app
        from mask_r_cnn.settings import ServeSettings
        from mask_r_cnn.transforms import image_to_tensor
        from PIL import Image

        model_dir = base_dir / "model"
        self.predictor = Predictor(model_dir, threads=threads)
        self.model = self.predictor.run(self._load_raw, model_dir, threshold)
        self.body = image.read_bytes()
        self.content_type = "image/png" if image.suffix == ".png" else "image/jpeg"
        with Image.open(io.BytesIO(self.body)) as decoded:
            self.pil = (
                decoded.convert("RGB") if decoded.mode not in ("RGB", "L") else decoded.copy()
            )
        self.tensor = self.predictor.run(image_to_tensor, self.pil)
        self.threshold = threshold
        self.predictor.warm_up()
        serve_settings = ServeSettings(model_dir=model_dir, threads=threads, use_nginx=False)
        self.client = create_app(serve_settings, self.predictor).test_client()
        self.detections = 0

    @staticmethod
    def _load_raw(model_dir: Path, threshold: float) -> Any:
        import torch
        from mask_r_cnn.model import ModelSpec, build_model

        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        model = build_model(ModelSpec.from_dict(metadata["model"]))
        model.load_state_dict(torch.load(model_dir / "model.pth", weights_only=True))
        model.eval()
        # The server raises the score threshold before the box and mask heads; so does the
        # raw forward, or it would do the mask work the server skips.
        base = float(model.roi_heads.score_thresh)
        model.roi_heads.score_thresh = max(base, threshold - 1e-6)
        return model

    def _forward(self) -> float:
        import torch

        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model([self.tensor])[0]
        elapsed = (time.perf_counter() - started) * 1000
        self.detections = int(output["scores"].numel())
        return elapsed

    def raw(self) -> float:
        """One raw forward on the inference thread; return its ms."""
        elapsed: float = self.predictor.run(self._forward)
        return elapsed

    def predict(self) -> float:
        """One `Predictor.predict` of the decoded image; return ms."""
        started = time.perf_counter()
        self.predictor.predict(self.pil, self.threshold)
        return (time.perf_counter() - started) * 1000

    def flask(self) -> float:
        """One POST through the Flask test client (no socket); return ms."""
        started = time.perf_counter()
        response = self.client.post(
            "/invocations", data=self.body, headers={"Content-Type": self.content_type}
        )
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise BenchError(
                f"the Flask app answered {response.status_code}: {response.get_data(as_text=True)}"
            )
        return elapsed


def paired_round(local: InProcess, url: str, count: int) -> tuple[list[float], list[float], float]:
    """`count` raw forwards and `count` requests, alternating one by one.

    Alternating pairs each request with a forward a few milliseconds away, so a burst of
    steal time on the VM lands on both sides alike instead of on one half of the round.

    Returns:
        (raw forward ms, request ms, this process's CPU seconds in the raw forwards).

    Raises:
        BenchError: a request did not answer 200.
    """
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    raw, http, cpu = [], [], 0.0
    for _ in range(count):
        cpu_before = time.process_time()
        raw.append(local.raw())
        cpu += time.process_time() - cpu_before
        latency, status = post_once(host, port, local.body, local.content_type, timeout=120)
        if status != 200:
            raise BenchError(f"a request answered HTTP {status}; look at the serve log")
        http.append(latency)
    return raw, http, cpu


def profile_server(
    url: str, pid: int, image: Path, requests: int, settings: BenchSettings, folder: Path
) -> str:
    """Sample the serve process tree with py-spy during `requests` requests; summarise it."""
    out = folder / "serve-profile.txt"
    spy = start_attached(pid, out)
    if spy is None:
        return "no profile of the server (py-spy is not installed)."
    time.sleep(2)  # py-spy attaches to the process tree
    answer = load(url, image, 1, requests, settings.repo_root)
    stacks = stop_attached(spy, out)
    if not stacks:
        return "no profile of the server (py-spy could not attach)."
    forward = share_of(stacks, "generalized_rcnn.py")
    predict = share_of(stacks, "Predictor.predict")
    flask = share_of(stacks, "Flask.wsgi_app")
    shares = ", ".join(f"{n} {s:.0%}" for n, s in list(process_shares(stacks).items())[:3])
    return (
        f"py-spy on the serve process tree during {answer['completed']} more requests (p50 "
        f"{median(answer['latencies_ms']):.0f} ms): CPU samples by process {shares}; of the "
        f"busy samples {flask:.0%} are inside the Flask app, {predict:.0%} inside "
        f"Predictor.predict and {forward:.0%} inside the model forward (torchvision "
        "generalized_rcnn.py). The server's own Python work outside the forward is the "
        "difference; the rest of the HTTP latency is time the worker was not running "
        "(waiting for a CPU on this shared machine, accept and socket wake-ups). "
        + describe_profile(stacks, count=4)
    )


def run(settings: BenchSettings) -> Measurement:
    """Measure the serving overhead (see the module docstring)."""
    import torch

    torch.set_num_threads(settings.threads)
    rounds = settings.count(default=7, smoke=1)
    per_round = 2 if settings.smoke else 8
    warm_up = 1 if settings.smoke else 5  # new shapes cost extra on the first forwards
    c4_requests = 4 if settings.smoke else 40
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        # On a thread that then ends, so this thread never runs torch kernels (see InProcess).
        with ThreadPoolExecutor(max_workers=1) as once:
            base_dir, image, threshold = once.submit(write_model, folder, settings).result()
        local = InProcess(base_dir, image, threshold, settings.threads)
        for _ in range(warm_up):  # the same warm-up for every layer and the server
            local.raw(), local.predict(), local.flask()
        log = folder / "serve.log"
        series: dict[str, list[list[float]]] = {
            "raw": [],
            "http": [],
            "raw_back_to_back": [],
            "predict": [],
            "flask": [],
        }
        c1_rps = []
        cpu_ms: dict[str, list[float]] = {"raw": [], "http": []}
        server_profile = None
        with serving(base_dir, settings.threads, settings.repo_root, log) as (url, pid):
            load(url, image, 1, warm_up, settings.repo_root)
            server_before = tree_cpu_seconds(pid)
            for _ in range(rounds):
                raw, http, raw_cpu = paired_round(local, url, per_round)
                server_after = tree_cpu_seconds(pid)
                if server_before is not None and server_after is not None:
                    cpu_ms["http"].append((server_after - server_before) * 1000 / per_round)
                cpu_ms["raw"].append(raw_cpu * 1000 / per_round)
                series["raw"].append(raw)
                series["http"].append(http)
                c1_rps.append(per_round / (sum(http) / 1000))
                series["raw_back_to_back"].append([local.raw() for _ in range(per_round)])
                series["predict"].append([local.predict() for _ in range(per_round)])
                series["flask"].append([local.flask() for _ in range(per_round)])
                server_before = tree_cpu_seconds(pid)
            c4 = load(url, image, 4, c4_requests, settings.repo_root)
            ratio_so_far = median(
                [median(h) / median(r) for h, r in zip(series["http"], series["raw"], strict=True)]
            )
            if settings.profile and not settings.smoke and ratio_so_far > TARGET_RATIO:
                server_profile = profile_server(url, pid, image, per_round, settings, folder)
        front = "nginx+gunicorn" if shutil.which("nginx") else "gunicorn"
        model_spec = json.loads((base_dir / "model" / "metadata.json").read_text())["model"]
    p50 = {name: [median(r) for r in rounds_] for name, rounds_ in series.items()}
    p95 = {name: [percentile(r, 95) for r in rounds_] for name, rounds_ in series.items()}
    ratios = [h / r for h, r in zip(p50["http"], p50["raw"], strict=True)]
    ratio = median(ratios)
    # The fastest request against the fastest forward: the least disturbed by other processes.
    fastest = {name: min(min(r) for r in rounds_) for name, rounds_ in series.items()}
    fastest_ratio = fastest["http"] / fastest["raw"]
    verdict = at_most(ratio, TARGET_RATIO)
    raw50, http50 = median(p50["raw"]), median(p50["http"])
    layers = {
        "raw forward": median(p50["raw_back_to_back"]),
        "Predictor.predict": median(p50["predict"]),
        "Flask app (test client)": median(p50["flask"]),
    }
    breakdown = "; ".join(f"{name} {ms:.1f} ms" for name, ms in layers.items())
    findings = [
        f"p50 in process, back to back (same image, same threads): {breakdown}. Alternating "
        f"with the requests: raw forward {raw50:.1f} ms, HTTP via {front} {http50:.1f} ms (a "
        "forward that follows an idle gap is slower than one of a tight loop, on both sides "
        f"alike). Per-round ratios range "
        f"{min(ratios):.2f} to {max(ratios):.2f}: on this shared machine the figure cannot "
        f"resolve a 10% overhead; the fastest request against the fastest forward gives "
        f"{fastest_ratio:.2f}."
    ]
    if verdict == "missed":
        steps = list(layers.items())
        added = [
            f"{name} +{ms - steps[i - 1][1]:.1f} ms" for i, (name, ms) in enumerate(steps) if i
        ]
        findings.append(
            f"the overhead ratio {ratio:.2f} is over {TARGET_RATIO}: HTTP adds "
            f"{http50 - raw50:.1f} ms to the alternating forward; in process "
            + ", ".join(added)
            + "."
        )
    if cpu_ms["http"]:
        findings.append(
            f"CPU time per request (user + system, all threads): server process tree "
            f"{median(cpu_ms['http']):.0f} ms, raw forward in this process "
            f"{median(cpu_ms['raw']):.0f} ms, against p50 wall times of {http50:.0f} ms and "
            f"{raw50:.0f} ms; a wall-time gap with equal CPU time is time spent waiting for a "
            "CPU, not work the server adds."
        )
    if server_profile:
        findings.append(server_profile)
    figures = [
        Figure(
            figure="`POST /invocations` p50 latency, concurrency 1",
            target=f"ratio <= {TARGET_RATIO:.2f}",
            result=round(http50, 2),
            unit="ms",
            ratio=round(ratio, 3),
            verdict=verdict,
            note=(
                f"raw forward p50 {raw50:.1f} ms; median of {rounds} paired rounds of "
                f"{per_round} (range {min(ratios):.2f} to {max(ratios):.2f}); fastest request "
                f"/ fastest forward {fastest_ratio:.2f}"
            ),
        ),
        Figure(
            figure="`POST /invocations` p50 latency of the demo model, concurrency 1",
            target=f"<= {TARGET_P50_MS:.0f} ms",
            result=round(http50, 2),
            unit="ms",
            ratio=round(http50 / TARGET_P50_MS, 3),
            verdict=at_most(http50, TARGET_P50_MS),
            note=(
                "issue 14's absolute target for a 96-px image (the demo model scales it to "
                "128 px) on one worker"
            ),
        ),
        Figure(
            figure="`POST /invocations` p95 latency, concurrency 1",
            target="",
            result=round(median(p95["http"]), 2),
            unit="ms",
            ratio=round(median(p95["http"]) / median(p95["raw"]), 3),
            verdict="info",
            note=f"raw forward p95 {median(p95['raw']):.1f} ms",
        ),
        Figure(
            figure="requests/s, concurrency 1",
            target="",
            result=round(median(c1_rps), 3),
            unit="req/s",
            verdict="info",
            note="1 sync worker",
        ),
        Figure(
            figure="requests/s, concurrency 4",
            target="",
            result=round(c4["requests_per_s"], 3),
            unit="req/s",
            verdict="info",
            note=(
                f"{c4['completed']} requests, p50 {median(c4['latencies_ms']):.0f} ms "
                "(queued behind 1 worker)"
            ),
        ),
    ]
    return Measurement(
        figures=figures,
        settings={
            "rounds": rounds,
            "requests_per_round": per_round,
            "warm_up_requests": warm_up,
            "concurrency_4_requests": c4_requests,
            "load_max_seconds": LOAD_MAX_SECONDS,
            "threads": settings.threads,
            "workers": 1,
            "front": front,
            "image": {"name": image.name, "bytes": len(local.body), "size": list(local.pil.size)},
            "score_threshold": threshold,
            "detections_per_forward": local.detections,
            "model": model_spec,
            "cpu_count": os.cpu_count(),
        },
        details={
            "p50_ms": {name: summary(values) for name, values in p50.items()},
            "p95_ms": {name: summary(values) for name, values in p95.items()},
            "ratio_per_round": summary(ratios),
            "fastest_ms": {name: round(ms, 2) for name, ms in fastest.items()},
            "fastest_ratio": round(fastest_ratio, 3),
            "cpu_ms_per_request": {k: summary(v) for k, v in cpu_ms.items() if v},
            "concurrency_1_rps": summary(c1_rps),
            "concurrency_4": {k: v for k, v in c4.items() if k != "latencies_ms"}
            | {"latency_ms": summary(c4["latencies_ms"])},
            "findings": findings,
        },
    )
