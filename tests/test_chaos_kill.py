"""SIGKILL of `optui collect` at random moments: files and store agree afterwards.

Real processes: the installed `optui collect` over the official kiteconnect client against the
simulated exchange on loopback (its clock keeps running across the collector's restarts), a
SQLite store, and the original-format JSON and CSV files. Each run is killed with SIGKILL after a
random number of cycles plus a random fraction of a cycle; after every kill each JSON file must be
whole, and after the next start the CSV holds exactly the legs the store holds.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from optui.models import LEG_CSV_COLUMNS
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import SimulatorServer, serve
from optui.storage.legacy_files import ist_iso
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

pytestmark = [pytest.mark.integration, pytest.mark.mock]

OPTUI = str(Path(sys.executable).with_name("optui"))
KILLS = 6  # the seeded draws kill four times between the store's commit and the files
START = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


@pytest.fixture
def sim_server() -> Iterator[SimulatorServer]:
    server = serve(SimulatedExchange(seed=5, speed=20.0, start=START), "127.0.0.1", 0)
    yield server
    server.close()


def _collect(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "OPTUI_CONFIG_FILE": str(tmp_path / "none.toml"),
        "OPTUI_SECRETS_FILE": str(tmp_path / "secrets.toml"),
        "OPTUI_KITE_ROOT": url, "OPTUI_KITE_API_KEY": "sim_key", "OPTUI_KITE_ACCESS_TOKEN": "sim_token",
        "OPTUI_SOURCE_INSTRUMENTS_CACHE_DIR": str(tmp_path / "instruments"),
        "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"),
        # Three strikes each side of ATM, not every listed one: the files and the store still get
        # every leg, and a cycle is short, so the kills land as often per second.
        "OPTUI_SOURCE_CHAIN_STRIKES": "3",
        # No recording: each start would write the instrument dump to it (over a second), and
        # what a killed collector leaves in its recording is tests/test_replay.py's subject.
        "OPTUI_RECORD_ENABLED": "false",
    }
    argv = [OPTUI, "collect", "--source", "kite", "--indices", "NIFTY,SENSEX", "--interval", "1",
            "--store", f"sqlite:///{tmp_path / 'optui.db'}", "--out", str(tmp_path / "out"), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def _wait_for_new_files(out: Path) -> None:
    """Return as soon as the next cycle's first JSON file appears (the store was just written)."""
    folder = out / "raw_snapshots" / "options" / "this_week"
    before = len(os.listdir(folder))
    for _ in range(200_000):
        if len(os.listdir(folder)) != before:
            return
        threading.Event().wait(0.0005)


def _leg_key(values: dict[str, str]) -> tuple[str, ...]:
    return (values["timestamp"], values["index"], values["bucket"], values["side"], values["strike_offset"])


def test_sigkill_mid_cycle_leaves_files_agreeing_with_the_store(sim_server: SimulatorServer, tmp_path: Path) -> None:
    rng = random.Random(20261125)
    out = tmp_path / "out"
    for _ in range(KILLS):
        proc = _collect(tmp_path, sim_server.url)
        assert proc.stdout is not None
        cycles = rng.randint(1, 2)
        seen = 0
        for line in proc.stdout:
            if " IST " in line:
                seen += 1
                if seen == cycles:
                    break
        assert seen == cycles, proc.stderr.read() if proc.stderr else ""
        if rng.random() < 0.5:
            threading.Event().wait(rng.uniform(0.0, 1.0))  # anywhere in the next cycle
        else:
            _wait_for_new_files(out)  # between the store's commit and the files, the narrow case
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        for path in out.rglob("*.json"):  # written whole or not at all
            assert json.loads(path.read_text(encoding="utf-8"))["index"] in {"NIFTY", "SENSEX"}, path
    final = _collect(tmp_path, sim_server.url, "--once")
    stdout, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    assert "Traceback" not in stderr

    (csv_file,) = out.rglob("options_*.csv")
    with csv_file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == LEG_CSV_COLUMNS
    in_csv = Counter(_leg_key(dict(zip(LEG_CSV_COLUMNS, r, strict=True))) for r in rows[1:])
    with SQLiteStore(tmp_path / "optui.db") as store:
        stored = store.query("atm_options", datetime(2000, 1, 1, tzinfo=IST), datetime(2100, 1, 1, tzinfo=IST))
    in_store = Counter(
        (ist_iso(r.time), r.tags["index"], r.tags["bucket"], r.tags["side"], r.tags["strike_offset"]) for r in stored
    )
    assert len(in_store) > KILLS * 20  # at least one cycle of two indices per run
    assert max(in_csv.values()) == 1  # no row written twice
    assert in_csv == in_store
    assert len(list(out.rglob("*.json"))) == len(stored)
