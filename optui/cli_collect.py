"""`optui collect`, `serve`, `replay` and `simulate`: the long-running processes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optui.cli_common import (
    ConfigOpt,
    SourceKind,
    _check_port,
    _fail,
    _parse_day,
    _printer,
    _settings,
)


def collect(
    source: Annotated[SourceKind | None, typer.Option(help="sim (built-in simulated exchange) or kite.")] = None,
    indices: Annotated[str | None, typer.Option(help="Comma list, e.g. NIFTY,BANKNIFTY (default: all five).")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between cycles (default 30).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or influxdb://HOST:PORT[?version=1|2] (influxdb1:// and influxdb2:// also work).")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for the JSON-per-leg files and CSV sidecar.")] = None,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help='On exit, write {"cycles": N, "points": M, "pending": P} here.')] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Also serve the read-only API from this collector's own feed.")] = False,
    host: Annotated[str | None, typer.Option(help="With --serve: address to bind (default: api.host, loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="With --serve: TCP port (default: api.port, 8000).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Collect headless: one status line per cycle; SIGINT/SIGTERM stop after the current write."""
    settings = _settings(config)
    _check_port(port)
    from optui.errors import ConfigError, OptuiError
    from optui.indices import parse_indices
    from optui.logs import setup_logging

    if indices:
        try:
            settings.source.indices = parse_indices(indices)
        except ValueError as exc:
            _fail(f"--indices: {exc}")
    if interval is not None:
        if not 1 <= interval <= 3600:
            _fail(f"--interval {interval}: allowed 1 to 3600 seconds")
        settings.source.interval_s = interval
    setup_logging(settings, to_stderr=True)
    from optui.collectors.headless import Collector, exit_report
    from optui.feed.local import LocalFeed

    # One collector per store and source: a second one is refused, naming the holder.
    feed = LocalFeed.from_settings(settings, source.value if source else None, store, out)
    try:
        feed.start()
    except (ConfigError, OptuiError) as exc:
        _fail(str(exc))
    engine = feed.engine
    assert engine is not None
    if once and not getattr(engine.source, "has_token", True):  # a one-shot has nothing to wait for
        from optui.collectors.kite_source import LOGIN_FIX, NO_TOKEN

        feed.close()
        _fail(f"{NO_TOKEN}: {LOGIN_FIX}; then run optui collect --once again")
    printer = _printer()
    collector = Collector(engine, settings.source.interval_s, printer=printer,
                          slow_share=settings.source.slow_cycle_share, feed=feed)
    from optui.collectors.health import HEALTH_FILE

    if engine.state_dir is not None:  # beside the day state: a simulated run never mixes in
        collector.supervisor.health_file = engine.state_dir / HEALTH_FILE
    collector.install_signal_handlers()
    printer(
        f"optui collect: source={engine.source_label.lower()} indices={','.join(engine.indices)} "
        f"interval={settings.source.interval_s:g}s"
        + (f" snapshot={engine.snapshot_s:g}s" if engine.snapshot_s is not None else "")
        + f" store={engine.store.describe()}", "bold",
    )
    if engine.alerts is not None:
        printer(f"alerts: {engine.alerts.describe()}", "")
    api = None
    if serve:  # in a child process following this collector's cycles (see optui.api.child)
        from optui.api.serve import serve_collector
        from optui.collectors.engine import is_simulated, store_url_for

        bind_host = host or settings.api.host
        bind_port = settings.api.port if port is None else port
        kind = source.value if source else settings.source.kind
        try:
            api = serve_collector(settings, feed, store_url_for(settings, is_simulated(settings, kind), store),
                                  bind_host, bind_port, printer, collector.supervisor)
        except (OptuiError, OSError) as exc:
            feed.close()
            _fail(f"cannot serve the API on {bind_host}:{bind_port}: {getattr(exc, 'strerror', None) or exc}")
    try:
        code = collector.run(once=once)
    finally:
        if api is not None:
            api.stop()
        feed.close()
    try:
        exit_report(collector, summary_json)
    except (OSError, OptuiError) as exc:
        _fail(f"--summary-json {summary_json}: cannot write it ({getattr(exc, 'strerror', None) or exc})")
    raise typer.Exit(code)



def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: api.host, loopback; another address needs a token set beforehand).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: api.port, 8000).")] = None,
    attach: Annotated[str | None, typer.Option("--attach", help="Follow the collector publishing to this cache: redis://[:PASSWORD@]HOST:PORT/DB.")] = None,
    rotate_token: Annotated[bool, typer.Option("--rotate-token", help="Replace the API token, print the new one once, and exit (a running server takes it within a second).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Serve the read-only REST and WebSocket API (docs at /docs) over the running collector's feed and the store; never collects."""
    settings = _settings(config)
    if attach is not None and not attach.startswith(("redis://", "rediss://")):
        _fail(f"--attach {attach!r}: give the collector's cache as redis://HOST:PORT/DB")
    bind_port = settings.api.port if port is None else port
    _check_port(bind_port)
    from optui.errors import ConfigError
    from optui.logs import setup_logging

    setup_logging(settings, to_stderr=True)
    printer = _printer()
    if rotate_token:
        from optui.api.auth import TOKEN_ENV, ensure_token
        from optui.api.serve import announce_token

        try:
            info = ensure_token(rotate=True)
        except ConfigError as exc:
            _fail(str(exc))
        if info.origin == "environment":
            printer(f"stored a new api_token in {info.path}, but {TOKEN_ENV} is set and wins: change it there", "yellow")
        else:
            announce_token(info, printer)
        return
    import signal
    import threading

    from optui.api.serve import serve as run_serve

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    raise typer.Exit(run_serve(settings, host or settings.api.host, bind_port, attach, printer, stop))



def replay(
    date: Annotated[str, typer.Option("--date", help="The recorded day to play, YYYY-MM-DD.")],
    speed: Annotated[float | None, typer.Option(help="Replayed seconds per real second (default: as fast as possible).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start at HH:MM IST (default: the first record).")] = None,
    store: Annotated[str | None, typer.Option(help="Store to write (default: data/replay, data/sim/replay for simulated days).")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for the JSON-per-leg files and CSV sidecar.")] = None,
    source: Annotated[SourceKind | None, typer.Option(help="Whose recording: sim (simulated) or kite (default: source.kind).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Play a recorded day headless through the collector's analytics and writers (source=replay)."""
    settings = _settings(config)
    import logging

    from optui.errors import OptuiError
    from optui.logs import setup_logging

    day = _parse_day(date, "--date")
    if speed is not None and not 0 < speed <= 100000:
        _fail(f"--speed {speed}: allowed above 0 up to 100000")
    setup_logging(settings, to_stderr=True)
    from optui.collectors.replay import plan_replay, replay_collector

    printer = _printer()
    try:
        plan = plan_replay(settings, day, source.value if source else None, store, out)
        collector, state = replay_collector(settings, plan, day, speed, from_, printer)
    except OptuiError as exc:
        _fail(str(exc))
    engine = collector.engine
    collector.install_signal_handlers()
    printer(
        f"optui replay: {plan.recording} source={engine.source_label.lower()} "
        f"speed={'max' if speed is None else f'{speed:g}x'} store={engine.store.describe()}", "bold",
    )
    try:
        code = collector.run()
    finally:
        for note in getattr(engine.source, "take_notices", list)():  # after the last cycle
            logging.getLogger("optui.replay").warning("%s", note)
            printer(f"  warning: {note}", "yellow")
        engine.close()
        state.cleanup()
    printer(f"replay done: {collector.cycles} cycle(s), {collector.points} point(s)", "bold")
    raise typer.Exit(code)



def simulate(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: simulator.host, loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: simulator.port, 8765).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same market (default: simulator.seed).")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per real second (default: simulator.speed).")] = None,
    start: Annotated[str | None, typer.Option(help='Simulated start, "YYYY-MM-DD HH:MM" IST (default: simulator.start, else the next open session).')] = None,
    api_key: Annotated[str | None, typer.Option(help="API key the simulator accepts (default: simulator.api_key).")] = None,
    access_token: Annotated[str | None, typer.Option(help="Access token the simulator accepts (default: simulator.access_token).")] = None,
    api_secret: Annotated[str | None, typer.Option(help="Check /session/token checksums against this secret (default: accept any).")] = None,
    faults: Annotated[str, typer.Option(help='Inject faults at rates, e.g. "429=0.05,5xx=0.05,timeout=0.02,token=0.01,malformed=0.02,slow=0.05,truncated=0.02,rotate=500".')] = "",
    config: ConfigOpt = None,
) -> None:
    """Serve the simulated exchange over the Kite Connect REST API and WebSocket ticker on one port ([simulator] settings as defaults)."""
    sim = _settings(config).simulator
    start_name = "--start" if start is not None else "simulator.start ="
    start = start if start is not None else sim.start or None
    start_at = None
    if not start:
        from optui.collectors.sim_source import demo_start

        start_at = demo_start()  # outside market hours: the next session's open, so prices move
    if start:
        from optui.timeutil import parse_ist_minute

        try:
            start_at = parse_ist_minute(start)
        except ValueError as exc:
            _fail(f"{start_name} {exc}")
    speed = sim.speed if speed is None else speed
    if not 0 < speed <= 10000:
        _fail(f"--speed {speed}: allowed above 0 up to 10000")
    host = host or sim.host
    port = sim.port if port is None else port
    _check_port(port)
    from optui.errors import OptuiError
    from optui.simulator.server import run_simulator

    try:
        run_simulator(host, port, sim.seed if seed is None else seed, speed, start_at,
                      api_key or sim.api_key, access_token or sim.access_token, api_secret,
                      faults)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port")
    except OptuiError as exc:
        _fail(str(exc))
