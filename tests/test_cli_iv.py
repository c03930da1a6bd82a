"""`optui iv backfill` as users run it, against the simulated exchange over kiteconnect."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import serve
from optui.storage.iv_history import iv_history
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

pytestmark = [pytest.mark.integration]

OPTUI = str(Path(sys.executable).with_name("optui"))


def run(*args: str, root: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPTUI_KITE_API_KEY": "sim_key", "OPTUI_KITE_ACCESS_TOKEN": "sim_token",
           "OPTUI_KITE_ROOT": root, "OPTUI_CONFIG_FILE": str(cwd / "none.toml")}
    return subprocess.run([OPTUI, "iv", "backfill", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def test_backfill_command_says_what_it_could_fetch(tmp_path: Path) -> None:
    server = serve(SimulatedExchange(seed=7, start=datetime(2026, 8, 19, 11, 0, tzinfo=IST)))
    try:
        db = tmp_path / "iv.db"
        res = run("--from", "2026-08-13", "--to", "2026-08-18", "--indices", "NIFTY",
                  "--store", f"sqlite:///{db}", root=server.url, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out = res.stdout
        assert "NIFTY this_week: ATM IV on 4 days from the contract expiring 2026-08-25" in out
        assert "expired options are not available" in out
        bad = run("--from", "2026-08-18", "--to", "2026-08-13", root=server.url, cwd=tmp_path)
        assert bad.returncode == 2 and "before --from" in bad.stderr
        assert "Traceback" not in bad.stderr + res.stderr
        wrong = run("--from", "18-08-2026", "--to", "2026-08-18", root=server.url, cwd=tmp_path)
        assert wrong.returncode == 2 and "YYYY-MM-DD" in wrong.stderr
    finally:
        server.close()
    with SQLiteStore(db) as store:
        closes = iv_history(store, "NIFTY", "this_week", date(2026, 8, 19))
    assert [c.day.day for c in closes] == [13, 14, 17, 18]
    assert all(5 < c.atm_iv < 30 and c.origin == "backfill" for c in closes)
