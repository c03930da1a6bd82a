"""`optui iv ...`: the stored daily ATM IV history (backfill from Kite's historical candles)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

iv_app = typer.Typer(help="Daily ATM IV history (iv_daily).", add_completion=False,
                     rich_markup_mode=None)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        typer.echo(f"error: {option} {text!r}: use YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None


@iv_app.command("backfill")
def backfill(
    from_: Annotated[str, typer.Option("--from", help="First session day, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last session day, YYYY-MM-DD (inclusive).")],
    indices: Annotated[str | None, typer.Option(help="Comma list (default: the configured indices).")] = None,
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or influxdb://HOST:PORT (default: the configured store).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML file.")] = None,
) -> None:
    """Fill daily ATM IV closes from Kite's historical day candles (options with oi=1).

    Only contracts listed today have history on Kite: the output says, per index and bucket,
    which contract the IV came from and which days got only the index close."""
    from optui.cli_common import _fail, _settings

    settings = _settings(config)
    start, end = _day(from_, "--from"), _day(to, "--to")
    if end < start:
        _fail(f"--to {end} is before --from {start}")
    if (end - start).days > 800:
        _fail("--from/--to span more than 800 days: Kite's day candles are served 2000 days a "
              "request but a backfill this long takes many requests; split it")
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.collectors.iv_backfill import backfill_iv
    from optui.collectors.rate_limit import KITE_RATES, RateLimiter
    from optui.config import load_secrets
    from optui.errors import ConfigError, OptuiError
    from optui.indices import parse_indices
    from optui.logs import setup_logging
    from optui.storage.base import open_store

    setup_logging(settings, to_stderr=False)
    try:
        keys = parse_indices(indices) if indices else list(settings.source.indices)
    except ValueError as exc:
        _fail(f"--indices: {exc}")
    token = load_secrets().get("kite_access_token", "")
    if not settings.kite.api_key or not token:
        _fail("Kite credentials missing: set kite.api_key and log in (or OPTUI_KITE_ACCESS_TOKEN)")
    from kiteconnect import KiteConnect

    kite = KiteConnect(settings.kite.api_key, access_token=token,
                       root=settings.kite.root.rstrip("/"), timeout=15)
    url = store_url_for(settings, is_simulated(settings, "kite"), store)
    try:
        with open_store(url, settings) as target:
            report = backfill_iv(kite, target, keys, start, end, settings.analytics.rate,
                                 acquire=RateLimiter(KITE_RATES).acquire)
    except (ConfigError, OptuiError) as exc:
        _fail(str(exc))
    for line in report.lines():
        typer.echo(line)
    if report.problems:
        raise typer.Exit(1)
