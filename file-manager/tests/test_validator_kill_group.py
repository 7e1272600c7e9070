"""A validator stopped early (timeout, shutdown) takes what it started with it: the runner forks
the tabix indexer, which used to go on, orphaned, until it had read the whole file."""

from __future__ import annotations

import asyncio
import os
import signal

import psutil

from file_manager.validation.service import kill_group


async def test_kill_group_ends_the_child_and_its_children():
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        "sleep 300 & echo $!; wait",
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    sleeper = psutil.Process(int(await proc.stdout.readline()))
    assert sleeper.is_running()
    await kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    gone, _ = psutil.wait_procs([sleeper], timeout=5)
    assert gone, "the grandchild survived"


async def test_kill_group_of_a_finished_process_is_quiet():
    proc = await asyncio.create_subprocess_exec("true", start_new_session=True)
    await proc.wait()
    await kill_group(proc)  # no ProcessLookupError
    assert os.getpgid(os.getpid()) != proc.pid
