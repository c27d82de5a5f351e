"""Where the time goes: sample a command with py-spy (every thread) and rank the functions.

py-spy samples all threads of a process from outside, which the local engine needs (each
state runs in its own thread); pyinstrument only sees the thread that started it. The raw
(collapsed) output, one `frame;frame;...;frame count` line per distinct stack, is reduced to
the share of samples each function appears in (inclusive) and ends in (self).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?):\d+\)$")
# Stacks that are waiting, not working: a thread blocked on a lock or a condition.
_IDLE_LEAVES = ("Condition.wait", "Event.wait", "Thread._wait_for_tstate_lock", "sleep")


@dataclass(frozen=True)
class HotFunction:
    """A function's share of the samples.

    Attributes:
        where: `file:function` (file relative to site-packages or the repository).
        inclusive: share of busy samples whose stack contains it (0-1).
        self_share: share of busy samples that end in it (0-1).
    """

    where: str
    inclusive: float
    self_share: float

    def describe(self) -> str:
        """One short phrase: `moto/...py:Fn 42% (self 3%)`."""
        return f"{self.where} {self.inclusive:.0%} (self {self.self_share:.0%})"


def py_spy() -> str | None:
    """Return the py-spy executable beside this interpreter or on PATH, or None."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return str(beside)
    return shutil.which("py-spy")


def _split_frames(stack: str) -> list[str]:
    """Split a collapsed stack at `;`, except inside a quoted process command line."""
    frames, current, quoted = [], [], False
    for char in stack:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            frames.append("".join(current))
            current = []
        else:
            current.append(char)
    frames.append("".join(current))
    return frames


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """Parse py-spy's raw output into `(frames root first, sample count)` pairs."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in _split_frames(stack) if not f.startswith("thread (")]
        stacks.append((frames, int(count)))
    return stacks


def _is_process(frame: str) -> bool:
    return frame.startswith("process ")


def _key(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match.group('file')}:{match.group('function')}"


def _is_idle(frames: Sequence[str]) -> bool:
    return bool(frames) and _key(frames[-1]).rsplit(":", 1)[-1] in _IDLE_LEAVES


def hot_functions(
    stacks: Iterable[tuple[list[str], int]],
    *,
    include: Sequence[str] = ("workflow/", "moto/", "mask_r_cnn/", "threading.py"),
    skip_imports: bool = True,
    count: int = 10,
) -> list[HotFunction]:
    """Rank the functions of busy samples by inclusive share, keeping files under `include`.

    Args:
        stacks: parsed collapsed stacks.
        include: path fragments of the files worth naming.
        skip_imports: leave out samples taken while importing modules (start-up, not work).
        count: how many to return.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, samples in stacks:
        if not frames or _is_idle(frames) or _is_process(frames[-1]):
            continue
        if skip_imports and any(f.startswith("_find_and_load ") for f in frames):
            continue
        total += samples
        for key in {_key(f) for f in frames if not _is_process(f)}:
            inclusive[key] += samples
        own[_key(frames[-1])] += samples
    if not total:
        return []
    ranked = [
        HotFunction(key, inclusive[key] / total, own[key] / total)
        for key, _ in inclusive.most_common()
        if any(part in key for part in include)
        and not key.endswith(("<module>", "Thread.run"))
        and not key.endswith(("Thread._bootstrap", "Thread._bootstrap_inner"))
    ]
    return ranked[:count]


def _program(frame: str) -> str:
    """A short name for a `process PID:"command line"` frame."""
    command = frame.split(":", 1)[1].strip('"') if ":" in frame else frame
    words = command.split()
    for marker in ("mask_r_cnn/train", "mask_r_cnn/serve", "gunicorn", "mask_r_cnn.synthetic"):
        if any(marker in word for word in words):
            return marker.rsplit("/", 1)[-1]
    if "workflow.cli" in command or ("-m" in words and "workflow" in words):
        return "workflow CLI"
    if "-m" in words and words.index("-m") + 1 < len(words):
        return " ".join(words[words.index("-m") + 1 : words.index("-m") + 3])
    return " ".join(words[1:3]) if len(words) > 1 else command


def process_shares(stacks: Iterable[tuple[list[str], int]]) -> dict[str, float]:
    """Share of busy samples per program (`py-spy --subprocesses` stacks), largest first."""
    shares: Counter[str] = Counter()
    total = 0
    for frames, samples in stacks:
        if not frames or _is_idle(frames):
            continue
        processes = [f for f in frames if _is_process(f)]
        total += samples
        shares[_program(processes[-1]) if processes else "main"] += samples
    return {name: count / total for name, count in shares.most_common()} if total else {}


def import_share(stacks: Iterable[tuple[list[str], int]]) -> float:
    """Share of busy samples spent importing modules."""
    busy = importing = 0
    for frames, samples in stacks:
        if not frames or _is_idle(frames):
            continue
        busy += samples
        if any(f.startswith("_find_and_load ") for f in frames):
            importing += samples
    return importing / busy if busy else 0.0


def profile_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    rate: int = 250,
    timeout: float = 300,
    subprocesses: bool = False,
) -> list[tuple[list[str], int]] | None:
    """Run `argv` under `py-spy record` and return its parsed stacks (None without py-spy).

    A failing profile is not an error of the benchmark: it returns None and the caller
    reports the figure without a profile.
    """
    executable = py_spy()
    if executable is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        out = Path(tmp) / "profile.txt"
        command = [executable, "record", "--format", "raw", "--rate", str(rate), "--nonblocking"]
        if subprocesses:
            command.append("--subprocesses")
        command += ["--output", str(out), "--", *argv]
        try:
            subprocess.run(
                command,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if not out.is_file():
            return None
        return parse_collapsed(out.read_text(encoding="utf-8", errors="replace"))


def top_self(
    stacks: Iterable[tuple[list[str], int]], *, skip_imports: bool = True, count: int = 5
) -> list[HotFunction]:
    """Rank the functions busy samples end in (any file): where the CPU time is spent."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, samples in stacks:
        if not frames or _is_idle(frames) or _is_process(frames[-1]):
            continue
        if skip_imports and any(f.startswith("_find_and_load ") for f in frames):
            continue
        total += samples
        for key in {_key(f) for f in frames if not _is_process(f)}:
            inclusive[key] += samples
        own[_key(frames[-1])] += samples
    if not total:
        return []
    return [
        HotFunction(key, inclusive[key] / total, samples / total)
        for key, samples in own.most_common(count)
    ]


def describe_profile(stacks: list[tuple[list[str], int]] | None, count: int = 5) -> str:
    """Summarise a profile in one sentence: busiest functions, then where the CPU time ends."""
    if not stacks:
        return "no profile (py-spy is not installed or could not attach)"
    hot = "; ".join(h.describe() for h in hot_functions(stacks, count=count))
    leaves = "; ".join(h.describe() for h in top_self(stacks, count=count))
    return (
        f"busiest functions outside imports (py-spy, all threads): {hot}. "
        f"Self time ends in: {leaves}"
    )


def share_of(stacks: Iterable[tuple[list[str], int]], fragment: str) -> float:
    """Share of busy samples whose stack has a frame containing `fragment`."""
    busy = hits = 0
    for frames, samples in stacks:
        if not frames or _is_idle(frames):
            continue
        busy += samples
        if any(fragment in frame for frame in frames):
            hits += samples
    return hits / busy if busy else 0.0


def start_attached(pid: int, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """Start `py-spy record` on a running process and its children; None without py-spy.

    Stop it with `stop_attached`, which makes py-spy write its raw output to `out`.
    """
    executable = py_spy()
    if executable is None:
        return None
    command = [executable, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    command += ["--format", "raw", "--rate", str(rate), "--output", str(out)]
    try:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def stop_attached(
    process: subprocess.Popen[bytes] | None, out: Path
) -> list[tuple[list[str], int]] | None:
    """Stop an attached py-spy (SIGINT) and return the parsed stacks it wrote, if any."""
    if process is None:
        return None
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if not out.is_file():
        return None
    return parse_collapsed(out.read_text(encoding="utf-8", errors="replace"))
