"""What this machine offers the course: library versions, the compute device, Java."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version

import torch

from helpers.errors import CourseError

PACKAGES = ("torch", "torchvision", "nltk", "pycocotools", "pillow", "matplotlib", "tqdm")


def usable_cores() -> int:
    """The CPU cores this process may run on (a container or `taskset` may allow fewer than the
    machine has): the most processes worth starting side by side."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes of memory free for new work on a device (Linux's MemAvailable for the CPU, the free
    memory of a CUDA GPU), or None where the system does not say."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


THREADS = "COURSE_THREADS"  # the README names it: how many threads the course's PyTorch uses
_CHOSEN: list[int] = []  # the policy's choice, made once per process


def _busy_cores(seconds: float = 0.2) -> float:
    """How many cores other processes keep busy now (Linux's /proc/stat over a moment; 0 where
    the system does not say): this process sleeps while it looks."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            user, nice, system, idle, iowait, *rest = map(int, f.readline().split()[1:9])
        return user + nice + system + sum(rest), user + nice + system + idle + iowait + sum(rest)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError):
        return 0.0
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def thread_policy() -> int:
    """Set how many threads PyTorch computes with, once per process, and return it: COURSE_THREADS
    (or OMP_NUM_THREADS) if set, else the cores this process may use less those other processes
    keep busy now.

    On a laptop shared with a browser or a video call, more threads than free cores make every
    parallel step wait for a thread that lost its core (benchmarks/busy_laptop.py measures
    training alone and beside one busy process with this policy and with PyTorch's own default).
    Processes the course starts (loader workers, torchrun) inherit the same number through
    OMP_NUM_THREADS.
    """
    if not _CHOSEN:
        # torchrun sets OMP_NUM_THREADS for each of its processes, and a user may: both count.
        variable = THREADS if os.environ.get(THREADS, "").strip() else "OMP_NUM_THREADS"
        asked = os.environ.get(variable, "").strip()
        if asked:
            if not asked.isdigit() or int(asked) < 1:
                raise CourseError(f"{variable}={asked!r}: must be a whole number of at least 1")
            threads = int(asked)
        else:
            threads = max(1, usable_cores() - round(_busy_cores()))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        _CHOSEN.append(threads)
    return _CHOSEN[0]


def worker_count(asked: int) -> int:
    """Loader worker processes: as many as asked, but never more than the usable cores."""
    return min(asked, usable_cores())


def size_text(n: float) -> str:
    """A number of bytes as people read it: "512 KiB", "3.4 GiB"."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit in ("bytes", "KiB") else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # the loop returns at TiB


def quiet() -> bool:
    """Whether progress bars are off for this process: a command's --quiet sets tqdm's own switch
    (TQDM_DISABLE), which a user may also set, and what a command builds on the way obeys it."""
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def best_device() -> torch.device:
    """CUDA when available, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def java_version() -> str | None:
    """The first line of `java -version`, or None when Java is missing."""
    java = shutil.which("java")
    if java is None:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else None


def environment_report() -> list[tuple[str, str]]:
    """(name, finding) rows describing Python, the packages, the device and Java."""
    rows = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            rows.append((name, version(name)))
        except PackageNotFoundError:
            rows.append((name, "MISSING: pip install -e . installs it"))
    dev = best_device()
    detail = (
        torch.cuda.get_device_name(0)
        if dev.type == "cuda"
        else f"{torch.get_num_threads()} CPU threads"
    )
    rows.append(("device", f"{dev.type} ({detail})"))
    java = java_version()
    rows.append(
        (
            "java",
            java + " (official COCO metrics: all available)"
            if java
            else "missing: METEOR and the official PTB tokenizer are skipped; BLEU, ROUGE-L and CIDEr "
            "use a Python tokenizer and are marked unofficial",
        )
    )
    return rows
