"""Latest-snapshot cache and pub/sub: in-process, and a real redis-server on loopback."""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest

from optui.errors import ConfigError, StoreError
from optui.storage.cache import SNAPSHOT_CHANNEL, Cache, MemoryCache, RedisCache, dumps, open_cache
from optui.timeutil import IST

SUMMARY = {
    "index": "NIFTY",
    "spot": 24812.35,
    "atm_strike": 24800,
    "pcr_oi": np.float64(0.93),
    "iv": math.nan,  # unpriceable: null in JSON
    "at": datetime(2026, 8, 17, 10, 15, tzinfo=IST),
}
DECODED = {
    "index": "NIFTY",
    "spot": 24812.35,
    "atm_strike": 24800,
    "pcr_oi": 0.93,
    "iv": None,
    "at": "2026-08-17T10:15:00+05:30",
}


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "memory":
        c: Cache = open_cache("memory://")
    else:
        c = open_cache(request.getfixturevalue("redis_server"))
    yield c
    c.close()


@pytest.mark.unit
def test_json_encoding_of_summaries() -> None:
    assert dumps({"a": np.int64(3), "b": [np.float64(1.5)]}) == '{"a":3,"b":[1.5]}'
    assert dumps({"x": math.inf}) == '{"x":null}'


@pytest.mark.integration
def test_snapshot_set_get_and_bulk(cache: Cache) -> None:
    assert cache.get_snapshot("NIFTY") is None
    cache.set_snapshot("NIFTY", SUMMARY)
    assert cache.get_snapshot("NIFTY") == DECODED
    cache.set_snapshots({k: {"index": k, "spot": i} for i, k in enumerate(["BANKNIFTY", "SENSEX"])})
    got = cache.get_snapshots(["NIFTY", "BANKNIFTY", "SENSEX", "MIDCPNIFTY"])
    assert set(got) == {"NIFTY", "BANKNIFTY", "SENSEX"}
    assert got["SENSEX"] == {"index": "SENSEX", "spot": 1}
    assert cache.ping()


@pytest.mark.integration
def test_publish_reaches_subscribers_in_order(cache: Cache) -> None:
    assert cache.publish(SNAPSHOT_CHANNEL, {"n": -1}) == 0  # nobody listening yet
    with cache.subscribe(SNAPSHOT_CHANNEL) as sub, cache.subscribe(SNAPSHOT_CHANNEL) as other:
        for n in range(5):
            assert cache.publish(SNAPSHOT_CHANNEL, {"n": n, "summary": SUMMARY}) == 2
        received = [sub.get(timeout=5.0) for _ in range(5)]
        assert [m["n"] for m in received] == [0, 1, 2, 3, 4]
        assert received[0]["summary"] == DECODED
        assert other.get(timeout=5.0)["n"] == 0
        assert sub.get(timeout=0.05) is None  # nothing more
    assert sub.closed


@pytest.mark.integration
def test_subscription_iterator_across_threads(cache: Cache) -> None:
    sub = cache.subscribe("optui:test")
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        for message in sub:
            seen.append(message["n"])
            if len(seen) == 3:
                done.set()
                return

    worker = threading.Thread(target=follow)
    worker.start()
    for n in range(3):
        cache.publish("optui:test", {"n": n})
    assert done.wait(timeout=10.0)
    worker.join(timeout=10.0)
    sub.close()
    assert seen == [0, 1, 2]


@pytest.mark.integration
def test_redis_keys_are_visible_to_other_clients(redis_server: str) -> None:
    writer, reader = RedisCache(redis_server), RedisCache(redis_server)
    writer.set_snapshot("FINNIFTY", {"spot": 1.5})
    assert reader.get_snapshot("FINNIFTY") == {"spot": 1.5}
    assert reader.describe().startswith("Redis redis://127.0.0.1:")
    writer.close()
    reader.close()


@pytest.mark.unit
def test_unreachable_redis_names_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = open_cache(f"redis://:hunter2@127.0.0.1:{port}/0")
    assert not cache.ping()
    with pytest.raises(StoreError, match="not reachable.*redis-server.*memory://") as info:
        cache.set_snapshot("NIFTY", {"spot": 1})
    assert "hunter2" not in str(info.value) + repr(cache) + cache.describe()
    cache.close()


@pytest.mark.unit
def test_open_cache_urls() -> None:
    assert isinstance(open_cache(None), MemoryCache)
    assert isinstance(open_cache("redis://127.0.0.1:6379/2"), RedisCache)
    with pytest.raises(ConfigError, match="memory:// or redis://"):
        open_cache("memcached://x")


@pytest.mark.unit
def test_attaching_to_an_unreachable_redis_gives_the_attach_fix_not_the_cache_setting() -> None:
    """--attach names a collector's Redis: cache.url plays no part, so it is not the advice."""
    from optui.feed.attached import RedisFeed

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    feed = RedisFeed(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(StoreError) as info:
        feed.start()
    message = str(info.value)
    assert f"Redis at redis://127.0.0.1:{port}/0 is not reachable" in message
    assert "ssh -L" in message and "--attach" in message
    assert "memory://" not in message and "cache.url" not in message
    assert "hunter2" not in message
