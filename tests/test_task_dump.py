"""SIGUSR1's task dump follows a task's awaits through async generators, where a stuck Faust
stream waits (territory.worker.task_stacks)."""

from __future__ import annotations

import asyncio

from territory.worker import task_stacks


def test_the_dump_shows_where_a_task_waits_inside_an_async_generator():
    async def batches(never: asyncio.Event):
        while True:
            await never.wait()
            yield 1

    async def agent_like(never: asyncio.Event) -> None:
        async for _ in batches(never):
            pass

    async def main() -> str:
        never = asyncio.Event()
        task = asyncio.ensure_future(agent_like(never))
        await asyncio.sleep(0.01)
        dump = task_stacks()
        task.cancel()
        return dump

    dump = asyncio.run(main())
    lines = dump.splitlines()
    at = next(n for n, line in enumerate(lines) if line.endswith("in agent_like"))
    assert lines[at + 1].endswith("in batches"), dump
    assert any(line.endswith("in wait") for line in lines[at + 2 : at + 4]), dump
