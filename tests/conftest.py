"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def torch_one_thread():
    """Small tensors: one thread is as fast and does not spin against other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def no_worker_process_left_behind():
    """A worker process still alive at the end would make the interpreter wait for it at exit
    (multiprocessing joins its children), so the test run would never end: kill and report it."""
    import multiprocessing

    yield
    leftover = multiprocessing.active_children()
    for process in leftover:
        process.kill()
        process.join()
    assert not leftover, f"worker processes outlived the tests: {leftover}"
