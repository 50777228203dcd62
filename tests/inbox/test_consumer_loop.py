"""The inbox consumer's dispatch loop: one message at a time, in arrival order, errors surfaced.

It replaces channels' await_many_dispatch for speed (inbox/consumers.py), so
it must keep its promises: a handler never overlaps another, nothing is
reordered or dropped, a failing source fails the consumer, and stopping leaves
no task behind.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from inbox.consumers import _dispatch_in_order


class Stop(Exception):
    pass


def test_messages_from_both_sources_are_handled_one_at_a_time_in_arrival_order():
    async def scenario():
        socket, layer = asyncio.Queue(), asyncio.Queue()
        handled, running = [], []

        async def dispatch(message):
            running.append(message)
            assert len(running) == 1, f"{message} overlapped {running[0]}"
            await asyncio.sleep(0.001)  # a handler that awaits (the database, a send)
            handled.append(message)
            running.remove(message)
            if message == "stop":
                raise Stop

        loop = asyncio.ensure_future(_dispatch_in_order([socket.get, layer.get], dispatch))
        for message, source in [("a", socket), ("b", layer), ("c", layer), ("d", socket)]:
            source.put_nowait(message)
            await asyncio.sleep(0.01)
        layer.put_nowait("stop")
        with pytest.raises(Stop):
            await asyncio.wait_for(loop, 10)
        assert handled == ["a", "b", "c", "d", "stop"]

    async_to_sync(scenario)()


def test_a_failing_source_fails_the_loop_and_no_task_is_left_behind():
    async def scenario():
        forever = asyncio.Queue()
        started = []

        async def broken():
            raise ConnectionError("layer gone")

        async def waiting():
            started.append(asyncio.current_task())
            return await forever.get()

        async def dispatch(message):
            raise AssertionError(f"nothing should be dispatched, got {message}")

        with pytest.raises(ConnectionError, match="layer gone"):
            await asyncio.wait_for(_dispatch_in_order([waiting, broken], dispatch), 10)
        assert started and started[0].done()  # the other source's pump was cancelled and awaited

    async_to_sync(scenario)()
