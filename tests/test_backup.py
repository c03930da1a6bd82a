"""`optui backup` and `optui restore`: consistent online copies while a collector writes, the same
answers after a restore, refusals that change nothing, no secrets, InfluxDB's own backup."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servers import InfluxServer

from optui.config import Settings, load_settings
from optui.storage import backup as backup_mod
from optui.storage.backup import BackupError, backup, config_without_secrets, sha256_file
from optui.storage.base import Store, open_store
from optui.storage.points import Point
from optui.storage.restore import open_elsewhere, restore, verify
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

OPTUI = str(Path(sys.executable).with_name("optui"))
# Four strikes each side of the ATM, not every listed one: the same stored legs, quicker cycles.
SIM_ENV = {"OPTUI_SIMULATOR_START": "2026-11-25 11:00", "OPTUI_SIMULATOR_SPEED": "60",
           "OPTUI_SOURCE_CHAIN_STRIKES": "4"}
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPTUI, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **SIM_ENV, **(env or {})})


def settings_in(root: Path) -> Settings:
    s = Settings()
    s.general.data_dir = str(root / "data")
    return s


def frames(db: Path, measurement: str = "index_overview") -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(
            "SELECT count(*) FROM frames f JOIN measurements m ON m.id = f.measurement_id "
            "WHERE m.name = ?", (measurement,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the collector has not created the schema yet
    finally:
        conn.close()


def wait_for(predicate: Any, what: str, tries: int = 600) -> None:
    """Poll (0.1 s apart, bounded) until `predicate()`; a failure names what never happened."""
    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def answers(store: Store, before: dict[str, datetime] | None = None,
            measurements: list[str] | None = None) -> dict[str, Any]:
    """Every query the app and exports make, for every measurement: rows, latest per index,
    tag values and 5-minute aggregates (mean, sum, last), up to `before[measurement]` when given."""
    out: dict[str, Any] = {}
    for m in measurements or store.measurements():  # type: ignore[attr-defined]
        end = before[m] if before is not None else EVERYTHING[1]
        rows = store.query(m, EVERYTHING[0], end)
        out[f"{m} rows"] = [(r.time, sorted(r.tags.items()), sorted(r.fields.items())) for r in rows]
        numeric = sorted({k for r in rows for k, v in r.fields.items()
                          if isinstance(v, float | int) and not isinstance(v, bool)})[:6]
        for index in store.tag_values(m, "index"):
            out[f"{m} {index} agg"] = [
                (fn, [(r.time, sorted(r.fields.items())) for r in
                      store.aggregate(m, numeric, EVERYTHING[0], end, "5m", {"index": index}, fn)])
                for fn in ("mean", "sum", "last")
            ]
        if before is None:
            out[f"{m} latest"] = [store.latest(m, {"index": i}) for i in store.tag_values(m, "index")]
            out[f"{m} tags"] = {t: store.tag_values(m, t) for t in ("index", "bucket", "side")}
    return out


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A real `optui collect` process writing simulated cycles into tmp_path/live.db."""
    db = tmp_path / "live.db"
    proc = subprocess.Popen(
        [OPTUI, "collect", "--source", "sim", "--indices", "NIFTY", "--interval", "60",
         "--store", f"sqlite:///{db}"],
        # One cycle per interval (legs stored with every overview), so the copy holds both.
        cwd=tmp_path, env={**os.environ, **SIM_ENV, "OPTUI_SOURCE_SNAPSHOT_S": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        yield db, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.integration
@pytest.mark.mock
def test_backup_while_a_collector_writes_restores_the_same_answers(
        tmp_path: Path, collector: tuple[Path, subprocess.Popen[str]]) -> None:
    db, proc = collector
    wait_for(lambda: frames(db) >= 3, "three collected cycles")
    at_start: list[int] = []
    committed_during: list[int] = []

    def progress(remaining: int, total: int) -> None:
        # Hold the copy open after its first step until the collector (another process) has
        # committed a new cycle: the copy must still be the snapshot it started from.
        if not at_start:
            at_start.append(frames(db))
            wait_for(lambda: frames(db) > at_start[0], "a cycle committed during the copy")
            committed_during.append(frames(db))

    report = backup(settings_in(tmp_path), tmp_path / "bk", f"sqlite:///{db}", step_pages=1,
                    progress=progress)
    assert committed_during and committed_during[0] > at_start[0]
    wait_for(lambda: frames(db) > committed_during[0], "the collector still writing after the copy")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert report.files["manifest.json"] > 0
    assert any("being written while it was copied" in note for note in report.notes)

    target = tmp_path / "restored" / "optui.db"
    restored = restore(settings_in(tmp_path / "restored"), tmp_path / "bk", f"sqlite:///{target}")
    assert [what for what, _ in restored.restored][0].startswith("SQLite store")
    with SQLiteStore(target) as copy, SQLiteStore(db) as original:
        assert copy.check_integrity() is None
        # The copy is the moment the backup began: exactly the cycles committed by then ...
        assert frames(target) == at_start[0] and frames(db) > frames(target)
        assert sorted(copy.measurements()) == sorted(original.measurements())
        # ... and up to its last moment it answers every query as the live store does (the last
        # moment itself is left out: the collector may since have merged into that minute's bars).
        last = {m: max((r.time for r in copy.query(m, *EVERYTHING)), default=EVERYTHING[0])
                for m in copy.measurements()}
        got, want = answers(copy, before=last), answers(original, before=last)
        assert got == want
        assert len(got["index_overview rows"]) >= at_start[0] - 1 >= 2
        assert len(got["atm_options rows"]) > len(got["index_overview rows"])


@pytest.mark.integration
@pytest.mark.mock
def test_cli_backup_and_restore_of_a_collected_store_answer_the_same(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "optui.toml").write_text(
        '[general]\ndata_dir = "data"\n[kite]\napi_key = "kite_key_1234"\n'
        '[alerts]\nwebhook_url = "https://hooks.example/T000/B000/hook_secret_99"\n'
        '[store]\nurl = "sqlite:///data/live.db"\n', encoding="utf-8")
    (home / "secrets.toml").write_text('kite_access_token = "tok_secret_5678"\n', encoding="utf-8")
    os.chmod(home / "secrets.toml", 0o600)
    env = {"OPTUI_CONFIG_FILE": str(home / "optui.toml"),
           "OPTUI_SECRETS_FILE": str(home / "secrets.toml")}
    for _ in range(2):
        res = run("collect", "--once", "--source", "sim", "--indices", "NIFTY",
                  "--store", "sqlite:///data/live.db", cwd=home, env=env)
        assert res.returncode == 0, res.stderr
    state = sorted(p.relative_to(home) for p in (home / "data" / "state").rglob("*.json"))
    assert state
    recordings = sorted(p.relative_to(home) for p in (home / "data" / "sim" / "recordings").rglob("*")
                        if p.is_file())
    assert recordings  # the collector records every cycle by default

    res = run("backup", str(tmp_path / "bk"), cwd=home, env=env)
    assert res.returncode == 0, res.stderr
    assert "secrets are not included" in res.stdout and "Traceback" not in res.stderr
    with SQLiteStore(home / "data" / "live.db") as live:
        newest = max(r.time for m in live.measurements() for r in live.query(m, *EVERYTHING))
    # Moments on screen are IST, like every other time the app shows.
    assert f"newest moment {newest.astimezone(IST):%Y-%m-%d %H:%M} IST" in res.stdout, res.stdout
    bk = tmp_path / "bk"
    manifest = json.loads((bk / "manifest.json").read_text())
    assert manifest["secrets_included"] is False and "secrets are not included" in manifest["secrets_note"]
    assert manifest["created_at"].endswith("Z") and manifest["optui_version"]
    listed = {e["path"]: e for e in manifest["files"]}
    assert "store/live.db" in listed and "config/optui.toml" in listed
    assert any(p.startswith("dirs/state/") for p in listed)
    for rel, entry in listed.items():
        assert sha256_file(bk / rel) == entry["sha256"] and (bk / rel).stat().st_size == entry["size"]
    # No secret anywhere in the backup, every file private.
    for path in [p for p in bk.rglob("*") if p.is_file()]:
        data = path.read_bytes()
        for secret in (b"tok_secret_5678", b"hook_secret_99", b"kite_key_1234", b"secrets.toml\n"):
            assert secret not in data, (path, secret)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(bk.rglob("secrets*"))

    # Restore on a "new machine": another working directory and configuration.
    new = tmp_path / "new"
    new.mkdir()
    env2 = {"OPTUI_CONFIG_FILE": str(new / "optui.toml"), "OPTUI_SECRETS_FILE": str(new / "secrets.toml")}
    res = run("restore", str(bk), "--store", "sqlite:///data/live.db", cwd=new, env=env2)
    assert res.returncode == 0, res.stderr
    assert "checksums of" in res.stdout and "restored SQLite store" in res.stdout
    assert f"..{newest.astimezone(IST):%Y-%m-%d %H:%M} IST" in res.stdout, res.stdout
    assert "restored state" in res.stdout and "restored configuration" in res.stdout
    assert "restored sim_recordings" in res.stdout
    for rel in state + recordings:
        assert (new / rel).read_bytes() == (home / rel).read_bytes()
    restored_config = (new / "optui.toml").read_text()
    assert "tok_secret" not in restored_config and "api_key" not in restored_config
    assert stat.S_IMODE((new / "optui.toml").stat().st_mode) == 0o600
    with SQLiteStore(home / "data" / "live.db") as a, SQLiteStore(new / "data" / "live.db") as b:
        want, got = answers(a), answers(b)
        assert got == want and len(want) > 6
    # Restoring again without --force is refused; with --force the old store is kept beside.
    res = run("restore", str(bk), "--store", "sqlite:///data/live.db", cwd=new, env=env2)
    assert res.returncode == 1 and "not empty" in res.stderr and "--force" in res.stderr
    assert "Traceback" not in res.stderr
    res = run("restore", str(bk), "--store", "sqlite:///data/live.db", "--force", cwd=new, env=env2)
    assert res.returncode == 0, res.stderr
    assert list((new / "data").glob("live.db.before-restore-*"))
    assert "configuration not restored" in res.stdout


def _small_store(root: Path, cycles: int = 4) -> Path:
    db = root / "data" / "optui.db"
    t0 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
    with SQLiteStore(db) as store:
        for i in range(cycles):
            store.write([Point("index_overview", {"index": ix}, {"spot": 100.0 + i, "pcr": 0.9},
                               t0 + timedelta(minutes=i)) for ix in ("NIFTY", "SENSEX")])
    state = root / "data" / "state" / "sim"
    state.mkdir(parents=True)
    (state / "state_2026-11-25.json").write_text('{"oi_first": {"1": 5.0}}', encoding="utf-8")
    return db


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.unit
def test_a_corrupted_backup_is_refused_naming_the_file_and_nothing_changes(tmp_path: Path) -> None:
    db = _small_store(tmp_path / "a")
    backup(settings_in(tmp_path / "a"), tmp_path / "bk", f"sqlite:///{db}")
    target_root = tmp_path / "b"
    other = _small_store(target_root, cycles=2)  # an existing store restore would replace
    before = _tree(target_root)
    store_copy = tmp_path / "bk" / "store" / "optui.db"
    data = bytearray(store_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    store_copy.write_bytes(bytes(data))
    for force in (False, True):
        with pytest.raises(BackupError, match=r"store/optui.db .*does not match its checksum"):
            restore(settings_in(target_root), tmp_path / "bk", f"sqlite:///{other}", force=force)
        assert _tree(target_root) == before
    state = tmp_path / "bk" / "dirs" / "state" / "sim" / "state_2026-11-25.json"
    store_copy.unlink()
    with pytest.raises(BackupError, match=r"store/optui.db is missing"):
        verify(tmp_path / "bk")
    (tmp_path / "bk" / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BackupError, match="damaged"):
        restore(settings_in(target_root), tmp_path / "bk", f"sqlite:///{other}")
    assert state.exists() and _tree(target_root) == before


@pytest.mark.unit
def test_refusals_before_any_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _small_store(tmp_path / "a")
    s = settings_in(tmp_path / "a")
    dest = tmp_path / "bk"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="exists and is not empty"):
        backup(s, dest, f"sqlite:///{db}")
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    with pytest.raises(BackupError, match="no SQLite store at .*nothing to back up"):
        backup(s, tmp_path / "bk2", f"sqlite:///{tmp_path / 'missing.db'}")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a SQLite database or it is damaged.*recover"):
        backup(s, tmp_path / "bk2", f"sqlite:///{tmp_path / 'junk.db'}")
    with pytest.raises(BackupError, match="nothing on disk"):
        backup(s, tmp_path / "bk2", "sqlite:///:memory:")
    assert not (tmp_path / "bk2").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    with pytest.raises(BackupError, match=r"inside .*state \(state\), which the backup copies"):
        backup(s, tmp_path / "a" / "data" / "state" / "bk", f"sqlite:///{db}")

    class Usage:
        free = 1000

    monkeypatch.setattr(backup_mod.shutil, "disk_usage", lambda _where: Usage())
    with pytest.raises(BackupError, match=r"not enough space at .*MB are free"):
        backup(s, tmp_path / "bk3", f"sqlite:///{db}")
    assert not (tmp_path / "bk3").exists()


@pytest.mark.unit
def test_restore_refuses_a_non_empty_day_state_without_force(tmp_path: Path) -> None:
    db = _small_store(tmp_path / "a")
    backup(settings_in(tmp_path / "a"), tmp_path / "bk", f"sqlite:///{db}")
    root = tmp_path / "b"
    (root / "data" / "state" / "kite").mkdir(parents=True)
    (root / "data" / "state" / "kite" / "state_2026-11-26.json").write_text("{}")
    target = root / "data" / "optui.db"
    with pytest.raises(BackupError, match=r"state \(state\) is not empty"):
        restore(settings_in(root), tmp_path / "bk", f"sqlite:///{target}")
    assert not target.exists()
    report = restore(settings_in(root), tmp_path / "bk", f"sqlite:///{target}", force=True)
    assert (root / "data" / "state" / "sim" / "state_2026-11-25.json").exists()
    assert any(p.name.startswith("state.before-restore-") for p in report.kept_aside)
    with SQLiteStore(db) as a, SQLiteStore(target) as b:
        assert answers(a) == answers(b)


@pytest.mark.unit
def test_configuration_copy_leaves_out_secret_keys_and_url_credentials() -> None:
    data = {"kite": {"api_key": "k", "root": "https://api.kite.trade"},
            "store": {"url": "influxdb://admin:pw123@db.example:8086?version=1"},
            "alerts": {"webhook_url": "https://hooks.slack.com/services/T/B/x", "cooldown_s": 60},
            "api": {"api_token": "t", "Password": "p"}, "general": {"data_dir": "data"}}
    clean, removed = config_without_secrets(data)
    assert clean["store"]["url"] == "influxdb://admin@db.example:8086?version=1"
    assert clean["alerts"] == {"webhook_url": "", "cooldown_s": 60}
    assert clean["kite"] == {"root": "https://api.kite.trade"} and clean["api"] == {}
    assert clean["general"] == {"data_dir": "data"}
    assert set(removed) == {"kite.api_key", "api.api_token", "api.Password",
                            "store.url (credentials in the URL)",
                            "alerts.webhook_url (credentials in the URL)"}
    assert "pw123" not in json.dumps(clean)


@pytest.mark.unit
def test_recordings_directories_come_along(tmp_path: Path) -> None:
    db = _small_store(tmp_path / "a")
    rec = tmp_path / "a" / "data" / "recordings" / "2026-11-25"
    rec.mkdir(parents=True)
    (rec / "NIFTY.jsonl").write_text('{"t": 1}\n')
    report = backup(settings_in(tmp_path / "a"), tmp_path / "bk", f"sqlite:///{db}")
    assert "dirs/recordings/2026-11-25/NIFTY.jsonl" in report.files
    root = tmp_path / "b"
    restore(settings_in(root), tmp_path / "bk", f"sqlite:///{root / 'data' / 'optui.db'}")
    assert (root / "data" / "recordings" / "2026-11-25" / "NIFTY.jsonl").read_text() == '{"t": 1}\n'


@pytest.mark.integration
def test_influxdb_1_backup_through_influxd_and_restore_into_another_server(tmp_path: Path) -> None:
    source = InfluxServer(tmp_path / "src")
    target = InfluxServer(tmp_path / "dst")
    source.start()
    target.start()
    try:
        settings = load_settings(tmp_path / "none.toml", environ={})
        t0 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
        with open_store(source.store_url, settings) as store:
            store.write([Point("index_overview", {"index": "NIFTY"}, {"spot": 24000.0 + i},
                               t0 + timedelta(minutes=i)) for i in range(5)])
            want = answers(store, measurements=["index_overview"])
        rpc = f"127.0.0.1:{source.rpc_port}"
        report = backup(settings, tmp_path / "bk", source.store_url, influx_rpc=rpc)
        manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
        assert manifest["store"]["kind"] == "influxdb-1" and manifest["store"]["rpc"] == rpc
        assert any(p.startswith("influx/") and p.endswith(".manifest") for p in report.files)
        restore(settings_in(tmp_path / "b"), tmp_path / "bk", target.store_url,
                influx_rpc=f"127.0.0.1:{target.rpc_port}")
        with open_store(target.store_url, settings) as store:
            assert answers(store, measurements=["index_overview"]) == want
        # A second restore meets the existing database: influxd refuses, the message says why.
        with pytest.raises(BackupError, match="influxd restore failed.*drop it first or add -newdb"):
            restore(settings_in(tmp_path / "c"), tmp_path / "bk", target.store_url,
                    influx_rpc=f"127.0.0.1:{target.rpc_port}")
        # Without influxd on this machine: the exact command to run on the server.
        with pytest.raises(BackupError, match=rf"influxd backup -portable -host {rpc} -db options-data DIR"):
            backup(settings, tmp_path / "bk2", source.store_url, influx_rpc=rpc,
                   influx_binary=str(tmp_path / "no-influxd"))
        assert not (tmp_path / "bk2").exists()
        # A wrong RPC address: influxd's own error and where to look.
        with pytest.raises(BackupError, match="nothing answers on InfluxDB's RPC address 127.0.0.1:1.*--influx-rpc"):
            backup(settings, tmp_path / "bk3", source.store_url, influx_rpc="127.0.0.1:1")
    finally:
        source.stop()
        target.stop()


@pytest.mark.integration
def test_cli_messages_have_no_traceback(tmp_path: Path) -> None:
    res = run("backup", str(tmp_path / "bk"), "--store", "influxdb://127.0.0.1:1", cwd=tmp_path)
    assert res.returncode == 1 and "cannot reach the InfluxDB server" in res.stderr
    res = run("restore", str(tmp_path / "nothing"), cwd=tmp_path)
    assert res.returncode == 1 and "not a directory" in res.stderr
    for r in (res,):
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.unit
def test_a_record_section_directory_is_carried(tmp_path: Path) -> None:
    from dataclasses import dataclass, field

    from optui.config import GeneralSettings
    from optui.storage.backup import backup_dirs

    @dataclass
    class Record:
        enabled: bool = True
        dir: str = str(tmp_path / "elsewhere" / "rec")

    @dataclass
    class WithRecord:
        general: GeneralSettings = field(default_factory=GeneralSettings)
        record: Record = field(default_factory=Record)

    s = WithRecord()
    s.general.data_dir = str(tmp_path / "data")
    dirs = backup_dirs(s)
    assert dirs["record.dir"] == tmp_path / "elsewhere" / "rec"
    assert dirs["state"] == tmp_path / "data" / "state"
    assert dirs["recordings"] == tmp_path / "data" / "recordings"
    assert dirs["sim_recordings"] == tmp_path / "data" / "sim" / "recordings"
    s.record.dir = str(tmp_path / "data" / "recordings")  # the same directory once
    assert sorted(backup_dirs(s)) == ["recordings", "sim_recordings", "state"]


@pytest.mark.integration
@pytest.mark.mock
def test_restore_refuses_a_store_a_running_collector_has_open(
        tmp_path: Path, collector: tuple[Path, subprocess.Popen[str]]) -> None:
    db, proc = collector
    source = _small_store(tmp_path / "a")
    backup(settings_in(tmp_path / "a"), tmp_path / "bk", f"sqlite:///{source}")
    wait_for(lambda: frames(db) >= 1, "a collected cycle")
    assert open_elsewhere(db) == proc.pid
    with pytest.raises(BackupError, match=rf"open in another process \(pid {proc.pid}\).*stop"):
        restore(settings_in(tmp_path / "b"), tmp_path / "bk", f"sqlite:///{db}", force=True)
    assert not list(tmp_path.glob("live.db.before-restore-*"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert open_elsewhere(db) is None


@pytest.mark.unit
def test_influxdb_2_without_its_cli_says_what_to_run(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.toml", environ={})
    url = "influxdb://127.0.0.1:1?version=2"  # version given: no server is asked
    with pytest.raises(BackupError, match=r"on the server run: INFLUX_TOKEN=\.\.\. influx backup DIR "
                       r"--host http://127.0.0.1:1 --org optui --bucket options-data"):
        backup(settings, tmp_path / "bk", url, influx_binary=str(tmp_path / "no-influx"))
    assert not (tmp_path / "bk").exists()


@pytest.mark.unit
def test_a_rollback_journal_store_is_copied_too(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (v)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    conn.commit()
    conn.close()
    report = backup(settings_in(tmp_path), tmp_path / "bk", f"sqlite:///{db}", step_pages=1)
    assert report.store.startswith("SQLite")
    copy = sqlite3.connect(tmp_path / "bk" / "store" / "old.db")
    assert copy.execute("SELECT count(*), sum(v) FROM t").fetchone() == (1000, 499500)
    copy.close()
