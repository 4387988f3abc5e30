"""What this machine offers the course: library versions, the compute device, Java."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version

import torch

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
