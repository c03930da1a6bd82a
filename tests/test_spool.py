"""The on-disk spool: order, durability across reopen, partial replay, and corrupt records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from optui.errors import StoreError
from optui.storage.spool import Spool


def _batch(start: int, n: int) -> bytes:
    return "".join(f"m,s=a v={i}i {i}\n" for i in range(start, start + n)).encode()


class _Sink:
    """Collects replayed bodies; fails on the call numbers in `fail_on` (1-based)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.lines: list[str] = []
        self.calls = 0
        self.fail_on = fail_on or set()

    def __call__(self, body: bytes, points: int) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise ConnectionError("server down")
        lines = body.decode().splitlines()
        assert len(lines) == points
        self.lines.extend(lines)


def _values(lines: list[str]) -> list[int]:
    return [int(line.split(" ")[1][2:-1]) for line in lines]


@pytest.mark.unit
def test_replays_in_order_and_empties(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    for k in range(5):
        spool.append(_batch(k * 10, 10), 10)
    status = spool.status()
    assert (status.points, status.segments) == (50, 1)
    assert status.bytes > 50 * 10
    sink = _Sink()
    assert spool.replay(sink, max_points=25) == 50
    assert _values(sink.lines) == list(range(50))
    assert sink.calls == 3  # whole 10-point records grouped up to 25 points: 20, 20, 10
    assert spool.status().points == 0
    assert list((tmp_path / "s").glob("*.spool")) == []


@pytest.mark.unit
def test_survives_reopen_and_rotates_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    for k in range(6):
        spool.append(_batch(k * 5, 5), 5)
    assert spool.status().segments > 1
    reopened = Spool(tmp_path, segment_bytes=200)  # as after a process restart
    assert len(reopened) == 30
    sink = _Sink()
    reopened.replay(sink)
    assert _values(sink.lines) == list(range(30))


@pytest.mark.unit
def test_failed_send_keeps_the_rest_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for k in range(4):
        spool.append(_batch(k * 3, 3), 3)
    first = _Sink(fail_on={3})
    with pytest.raises(ConnectionError):
        spool.replay(first, max_points=3)
    assert _values(first.lines) == list(range(6))
    assert len(spool) == 6  # only confirmed records were consumed
    spool.append(_batch(100, 2), 2)
    second = _Sink()
    assert spool.replay(second) == 8
    assert _values(second.lines) == [6, 7, 8, 9, 10, 11, 100, 101]


@pytest.mark.unit
def test_torn_tail_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    spool.append(_batch(0, 3), 3)
    spool.append(_batch(3, 3), 3)
    segment = next(tmp_path.glob("*.spool"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a crash in the middle of the second append
    reopened = Spool(tmp_path)
    assert len(reopened) == 3
    with caplog.at_level(logging.WARNING, logger="optui.storage.spool"):
        reopened.append(_batch(6, 2), 2)  # must land on a record boundary, after the good one
    assert "torn record" in caplog.text
    sink = _Sink()
    assert reopened.replay(sink) == 5
    assert _values(sink.lines) == [0, 1, 2, 6, 7]


@pytest.mark.unit
def test_corrupt_record_in_the_middle_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    for k in range(3):
        spool.append(_batch(k * 2, 2), 2)
    segment = next(tmp_path.glob("*.spool"))
    data = bytearray(segment.read_bytes())
    middle = data.index(b"v=2i")
    data[middle + 2] = ord("9")  # flip a byte of the second record: its checksum fails
    segment.write_bytes(bytes(data))
    sink = _Sink()
    with caplog.at_level(logging.WARNING, logger="optui.storage.spool"):
        assert spool.replay(sink) == 4
    assert _values(sink.lines) == [0, 1, 4, 5]
    assert "corrupt record" in caplog.text and "quarantine" in caplog.text
    assert spool.skipped == 1
    (kept,) = (tmp_path / "quarantine").iterdir()
    assert b"v=9i" in kept.read_bytes() and b"v=3i" in kept.read_bytes()  # the damaged batch, as it was


@pytest.mark.unit
def test_garbage_header_resynchronises(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_batch(0, 2), 2)
    segment = next(tmp_path.glob("*.spool"))
    with open(segment, "ab") as handle:
        handle.write(b"garbage without a header\n")
    spool.append(_batch(2, 2), 2)
    sink = _Sink()
    assert spool.replay(sink) == 4
    assert _values(sink.lines) == [0, 1, 2, 3]


@pytest.mark.unit
def test_unwritable_directory_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="store.spool_dir"):
        Spool(blocker / "spool").append(_batch(0, 1), 1)


@pytest.mark.unit
@pytest.mark.parametrize("where", ["payload", "length", "length_past_end", "points"])
def test_one_changed_digit_costs_one_record_the_rest_replays(tmp_path: Path, where: str) -> None:
    spool = Spool(tmp_path)
    spool.append(_batch(0, 140), 140)
    spool.append(_batch(140, 140), 140)
    spool.append(_batch(280, 140), 140)
    segment = next(tmp_path.glob("*.spool"))
    data = bytearray(segment.read_bytes())
    second = data.index(b"#optui-spool1 ", 1)
    header_end = data.index(b"\n", second)
    fields = data[second:header_end].split(b" ")  # magic, points, length, crc
    if where == "payload":
        at = data.index(b"v=200i", second)
        data[at + 2] = ord("7")
    elif where == "length":
        fields[2] = str(int(fields[2]) - 10).encode()
    elif where == "length_past_end":
        fields[2] = b"9" + fields[2]
    else:
        fields[1] = b"999"
    if where != "payload":
        data[second:header_end] = b" ".join(fields)
    segment.write_bytes(bytes(data))
    sink = _Sink()
    sent = spool.replay(sink)
    if where == "points":  # the payload and its checksum are intact: nothing is lost
        assert _values(sink.lines) == list(range(420)) and sent == 420
        return
    assert _values(sink.lines) == list(range(140)) + list(range(280, 420)) and sent == 280
    (kept,) = (tmp_path / "quarantine").iterdir()
    assert b"v=141i" in kept.read_bytes()
    assert list(tmp_path.glob("*.spool")) == []


_FILL_SCRIPT = """
import resource, signal, sys
from optui.errors import StoreError
from optui.storage.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
spool = Spool(sys.argv[1], segment_bytes=1 << 30)
acked = 0
for k in range(100):
    body = "".join(f"m,s=a v={i}i {i}\\n" for i in range(k * 50, k * 50 + 50)).encode()
    try:
        spool.append(body, 50)
    except StoreError as exc:
        print(acked, exc, file=sys.stderr)
        break
    acked += 50
print(acked)
"""


@pytest.mark.integration
def test_full_disk_leaves_no_torn_segment(tmp_path: Path) -> None:
    """A real write limit (RLIMIT_FSIZE: writes past it fail as on a full disk) mid-append."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _FILL_SCRIPT, str(tmp_path), "20000"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    acked = int(res.stdout.strip())
    assert 0 < acked < 5000 and "free disk space" in res.stderr
    (segment,) = tmp_path.glob("*.spool")
    assert segment.stat().st_size <= 20000
    reopened = Spool(tmp_path)  # after the disk has room again
    assert len(reopened) == acked
    sink = _Sink()
    assert reopened.replay(sink) == acked
    assert _values(sink.lines) == list(range(acked))
    assert reopened.skipped == 0 and not (tmp_path / "quarantine").exists()
    assert list(tmp_path.glob("*.spool")) == [] and list(tmp_path.glob("*.done")) == []


@pytest.mark.unit
def test_appends_never_wait_for_a_replay_stuck_on_a_hung_server(tmp_path: Path) -> None:
    import threading

    spool = Spool(tmp_path / "s")
    spool.append(_batch(0, 10), 10)
    sending = threading.Event()
    release = threading.Event()
    sent: list[str] = []

    def hung_send(body: bytes, points: int) -> None:
        sending.set()
        release.wait(30)  # a server answering only when released
        sent.extend(body.decode().splitlines())

    replayer = threading.Thread(target=spool.replay, args=(hung_send,))
    replayer.start()
    assert sending.wait(10)
    appender = threading.Thread(target=spool.append, args=(_batch(10, 10), 10))
    appender.start()
    appender.join(10)
    done_while_hung = not appender.is_alive()
    # A second replay while the first is stuck sends nothing twice.
    assert spool.replay(_Sink()) == 0
    release.set()
    replayer.join(10)
    assert done_while_hung
    assert _values(sent) == list(range(10))
    later = _Sink()
    assert spool.replay(later) == 10
    assert _values(later.lines) == list(range(10, 20))
    assert spool.status().points == 0
    assert list((tmp_path / "s").glob("*.spool")) == []
