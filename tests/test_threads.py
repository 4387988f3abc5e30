"""The thread policy: PyTorch's threads from the usable cores less the busy ones, or as the user
sets them; loader workers never more than the cores."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from helpers.environment import usable_cores, worker_count

POLICY = (
    "import torch\n"
    "from helpers.environment import thread_policy\n"
    "n = thread_policy()\n"
    "assert thread_policy() == n  # chosen once\n"
    "print(n, torch.get_num_threads())\n"
)


def policy(**env: str) -> subprocess.CompletedProcess:
    """Run the policy in a fresh process with these environment variables (and no others of its)."""
    base = {k: v for k, v in os.environ.items() if k not in ("COURSE_THREADS", "OMP_NUM_THREADS")}
    return subprocess.run(
        [sys.executable, "-c", POLICY], env={**base, **env}, capture_output=True, text=True
    )


def test_the_user_sets_the_threads_with_one_variable():
    assert policy(COURSE_THREADS="3").stdout.split() == ["3", "3"]
    assert policy(OMP_NUM_THREADS="2").stdout.split() == ["2", "2"]  # as torchrun sets it


def test_a_bad_thread_count_is_one_line():
    run = policy(COURSE_THREADS="many")
    assert run.returncode != 0
    assert "COURSE_THREADS='many': must be a whole number of at least 1" in run.stderr


def test_a_busy_core_is_left_to_its_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.5)
        threads, torch_threads = map(int, policy().stdout.split())
    finally:
        busy.kill()
        busy.wait()
    assert threads == torch_threads
    assert 1 <= threads <= max(1, usable_cores() - 1)


def test_loader_workers_are_never_more_than_the_cores():
    assert worker_count(0) == 0
    assert worker_count(1000) == usable_cores()
