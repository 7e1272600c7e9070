"""The rate limiter's pipelined Redis connection (api_gateway.redis_pipe) against the real
Redis: replies in order under concurrency, the database of the URL, errors, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api_gateway.redis_pipe import RedisPipe, _Incomplete, _parse

ECHO = "return {tonumber(ARGV[1]), redis.call('INCR', KEYS[1])}"


async def test_concurrent_calls_get_their_own_replies_in_order(redis_db_url):
    pipe = RedisPipe(redis_db_url, timeout=2)
    try:
        with pytest.raises(NoScriptError):
            await pipe.evalsha("0" * 40, ["k"], [])
        sha = await pipe.script_load(ECHO)
        replies = await asyncio.gather(
            *(pipe.evalsha(sha.decode(), ["pipe:counter"], [i]) for i in range(200))
        )
    finally:
        await pipe.aclose()
    assert [r[0] for r in replies] == list(range(200))
    assert sorted(r[1] for r in replies) == list(range(1, 201))


async def test_the_url_database_is_selected(redis_db_url):
    pipe = RedisPipe(redis_db_url, timeout=2)
    check = Redis.from_url(redis_db_url)
    try:
        sha = await pipe.script_load(ECHO)
        await pipe.evalsha(sha.decode(), ["pipe:where"], [1])
        assert await check.get("pipe:where") == b"1"  # the same database as the URL's
    finally:
        await pipe.aclose()
        await check.aclose()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(1 << 16)
            await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        server.close()


async def test_no_answer_is_a_timeout_and_every_waiting_call_fails_at_once():
    async with silent_server() as url:
        pipe = RedisPipe(url, timeout=0.2)
        try:
            results = await asyncio.gather(
                *(pipe.evalsha("0" * 40, ["k"], []) for _ in range(3)), return_exceptions=True
            )
        finally:
            await pipe.aclose()
    assert all(isinstance(r, RedisTimeoutError) for r in results), results


async def test_a_dead_redis_is_a_connection_error_and_the_next_call_connects_again(
    redis_db_url,
):
    from fedimpute_shared.embedded import free_port

    with pytest.raises(RedisConnectionError):
        await RedisPipe(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5).script_load(ECHO)
    pipe = RedisPipe(redis_db_url, timeout=2)
    try:
        await pipe.script_load(ECHO)
        assert pipe._protocol is not None
        pipe._protocol.fail(RedisConnectionError("cut"))  # as if Redis restarted
        assert len(await pipe.script_load(ECHO)) == 40
    finally:
        await pipe.aclose()


def test_replies_parse_whole_or_not_at_all():
    assert _parse(b"*2\r\n:1\r\n$3\r\nabc\r\n", 0) == ([1, b"abc"], 17)
    assert _parse(b"+OK\r\n", 0) == ("OK", 5)
    assert _parse(b"$-1\r\n", 0) == (None, 5)
    error, _ = _parse(b"-ERR wrong\r\n", 0)
    assert isinstance(error, ResponseError)
    assert not isinstance(error, NoScriptError)
    assert isinstance(_parse(b"-NOSCRIPT No matching script\r\n", 0)[0], NoScriptError)
    for cut in (b"*2\r\n:1\r\n", b"$3\r\nab", b":12"):
        with pytest.raises(_Incomplete):
            _parse(cut, 0)
    with pytest.raises(RedisConnectionError):
        _parse(b"HTTP/1.1 400\r\n", 0)
