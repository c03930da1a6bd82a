"""NSE participant-wise F&O positions and FII/DII cash flows: parsers and pure metrics.

File formats
------------
`fao_participant_oi_DDMMYYYY.csv` and `fao_participant_vol_DDMMYYYY.csv` from NSE's NSCCL archive
(https://nsearchives.nseindia.com/content/nsccl/): a title line in doubled quotes, padded with
commas, that alone carries the trade date ("... as on Aug 14, 2026"); a header line starting with
"Client Type" whose names may carry trailing spaces; then the rows Client, DII, FII, Pro and
TOTAL. Columns are found by header name, never by position. All numbers are contracts.

NSE's FII/DII cash-market provisional figures (the JSON array of its "fiidiiTradeReact"
endpoint): objects with `category`, `date` ("18-Sep-2026"), `buyValue`, `sellValue`, `netValue`
as strings in ₹ crore. Category names vary across years ("FII/FPI", "FII/FPI *", "DII **") and are
matched by prefix.

Metrics
-------
Per participant (from the OI file): index futures long/short/net and long share, index calls and
puts long/short/net, options bias (net calls - net puts), stock futures and stock options nets,
each with its change versus 1, 5 (a week) and 21 (a month) trading days earlier. From the volume
file: each participant's share of traded contracts and the Pro-versus-Client divergence. Cash:
net, streak of consecutive buying or selling days, rolling 5- and 20-day sums.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from optui.errors import OptuiError

PARTICIPANTS: tuple[str, ...] = ("Client", "DII", "FII", "Pro")
"""Participant categories, in the order NSE lists them."""
ROWS: tuple[str, ...] = (*PARTICIPANTS, "TOTAL")
KINDS: tuple[str, ...] = ("oi", "vol")
"""`oi` = open interest at the close, `vol` = contracts traded that day."""

SUM_TOLERANCE = 2
"""Participant sums may differ from TOTAL by this many contracts (NSE rounding): a warning."""

WEEK_TRADING_DAYS = 5
MONTH_TRADING_DAYS = 21
CHANGE_LAGS: dict[str, int] = {"1d": 1, "1w": WEEK_TRADING_DAYS, "1m": MONTH_TRADING_DAYS}
"""Change horizons in trading days (not calendar days)."""

# Stored field name for each header of the published files (normalised: lower case, single spaces).
COLUMNS: dict[str, str] = {
    "future index long": "future_index_long",
    "future index short": "future_index_short",
    "future stock long": "future_stock_long",
    "future stock short": "future_stock_short",
    "option index call long": "option_index_call_long",
    "option index put long": "option_index_put_long",
    "option index call short": "option_index_call_short",
    "option index put short": "option_index_put_short",
    "option stock call long": "option_stock_call_long",
    "option stock put long": "option_stock_put_long",
    "option stock call short": "option_stock_call_short",
    "option stock put short": "option_stock_put_short",
    "total long contracts": "total_long",
    "total short contracts": "total_short",
}
FIELDS: tuple[str, ...] = tuple(COLUMNS.values())

_TITLE_DATE = re.compile(r"as\s+on\s+([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})", re.IGNORECASE)
_FILE_NAME = re.compile(r"fao_participant_(oi|vol)_(\d{2})(\d{2})(\d{4})\.csv$", re.IGNORECASE)
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


class ParticipantFileError(OptuiError):
    """A participant or cash file was rejected: names the file, the line (1-based, 0 = whole
    file) and the reason; nothing of that file may be stored."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {reason}")


class NotCsvError(ParticipantFileError):
    """The body is not a CSV at all (typically an HTML error or login page)."""


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    """One row of a participant file: contract counts by stored field name (see FIELDS)."""

    participant: str
    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values[name]


@dataclass(frozen=True, slots=True)
class ParticipantFile:
    """One parsed `fao_participant_{kind}` file: a trade date, a kind and five rows."""

    trade_date: date
    kind: str
    rows: dict[str, ParticipantRow]  # keyed by Client, DII, FII, Pro, TOTAL
    warnings: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class CashFlow:
    """FII or DII cash-market provisional figures for one trade date, in ₹ crore."""

    trade_date: date
    category: str  # "FII" or "DII"
    buy_cr: float
    sell_cr: float
    net_cr: float


def _normalise(name: str) -> str:
    return " ".join(name.replace('"', " ").split()).lower()


def _title_date(line: str) -> date | None:
    match = _TITLE_DATE.search(line)
    if not match:
        return None
    month = _MONTHS.get(match.group(1)[:3].lower())
    if month is None:
        return None
    try:
        return date(int(match.group(3)), month, int(match.group(2)))
    except ValueError:
        return None


def name_date(name: str) -> tuple[str, date] | None:
    """(kind, trade date) from a file name `fao_participant_{oi|vol}_DDMMYYYY.csv`, else None."""
    match = _FILE_NAME.search(name)
    if not match:
        return None
    try:
        day = date(int(match.group(4)), int(match.group(3)), int(match.group(2)))
    except ValueError:
        return None
    return match.group(1).lower(), day


def file_name(kind: str, trade_date: date) -> str:
    """NSE's file name for a kind (`oi` or `vol`) and trade date."""
    return f"fao_participant_{kind}_{trade_date:%d%m%Y}.csv"


def looks_like_html(text: str) -> bool:
    """True when a body is an HTML page rather than data (an exchange error or block page)."""
    head = text.lstrip("\ufeff \t\r\n")[:512].lower()
    return head.startswith("<") or "<html" in head or "<!doctype" in head


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]))


def _cell_int(text: str) -> int | None:
    cell = text.strip().strip('"').strip().replace(",", "")
    if not re.fullmatch(r"-?\d+", cell):
        return None
    return int(cell)


def parse_participant_csv(text: str, source: str = "<text>") -> ParticipantFile:
    """Parse one participant OI or volume file as published.

    The kind and trade date come from the title line; when `source` is NSE's file name, they
    must agree with it. Raises NotCsvError for an HTML body and ParticipantFileError (naming
    `source`, the line and the reason) for a missing title, header, column or row, a repeated
    or unknown row, a non-integer cell, or a participant sum off TOTAL by more than
    SUM_TOLERANCE contracts; an offset within the tolerance becomes a warning.
    """
    if looks_like_html(text):
        raise NotCsvError(source, 0, "this is an HTML page, not NSE's CSV (an error or block "
                                     "page was saved instead of the file)")
    lines = text.lstrip("\ufeff").splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip(" ,\t")]
    if not numbered:
        raise ParticipantFileError(source, 0, "the file is empty")
    title_no, title = numbered[0]
    trade_date = _title_date(title)
    if trade_date is None:
        raise ParticipantFileError(source, title_no, "no title line with the trade date "
                                                     "('... as on Mon DD, YYYY')")
    low = title.lower()
    kind = "oi" if "open interest" in low else "vol" if "volume" in low else ""
    if not kind:
        raise ParticipantFileError(source, title_no, "title names neither Open Interest nor "
                                                     "Trading Volume")
    named = name_date(Path(source).name)
    if named is not None:
        if named[1] != trade_date:
            raise ParticipantFileError(source, title_no, f"title date {trade_date:%Y-%m-%d} "
                                       f"disagrees with the file name's {named[1]:%Y-%m-%d}")
        if named[0] != kind:
            raise ParticipantFileError(source, title_no, f"title is a {kind} file but the file "
                                                         f"name says {named[0]}")
    body = numbered[1:]
    if not body or _normalise(_cells(body[0][1])[0]) != "client type":
        line_no = body[0][0] if body else title_no + 1
        raise ParticipantFileError(source, line_no, "expected the header line starting with "
                                                    "'Client Type'")
    header_no, header = body[0]
    names = [_normalise(h) for h in _cells(header)]
    index: dict[str, int] = {}
    for pos, name in enumerate(names[1:], start=1):
        if name in COLUMNS:
            if COLUMNS[name] in index:
                raise ParticipantFileError(source, header_no, f"column {name!r} appears twice")
            index[COLUMNS[name]] = pos
    missing = [h for h, f in COLUMNS.items() if f not in index]
    if missing:
        raise ParticipantFileError(source, header_no, "missing column(s): " + ", ".join(missing))
    rows: dict[str, ParticipantRow] = {}
    row_lines: dict[str, int] = {}
    labels = {r.lower(): r for r in ROWS}
    for line_no, line in body[1:]:
        cells = _cells(line)
        while len(cells) > len(names) and not cells[-1].strip():
            cells.pop()
        if len(cells) != len(names):
            raise ParticipantFileError(source, line_no, f"{len(cells)} cells where the header has "
                                       f"{len(names)} (an unquoted thousands separator?)")
        label = labels.get(cells[0].strip().strip('"').strip().lower())
        if label is None:
            raise ParticipantFileError(source, line_no, f"unexpected row {cells[0].strip()!r}: "
                                       "expected Client, DII, FII, Pro or TOTAL")
        if label in rows:
            raise ParticipantFileError(source, line_no, f"row {label} appears twice")
        values: dict[str, int] = {}
        for fname, pos in index.items():
            raw = cells[pos] if pos < len(cells) else ""
            number = _cell_int(raw)
            if number is None:
                column = next(h for h, f in COLUMNS.items() if f == fname)
                raise ParticipantFileError(source, line_no, f"{label} {column!r} is not a whole "
                                                            f"number: {raw.strip()!r}")
            if number < 0:
                raise ParticipantFileError(source, line_no, f"{label} {fname} is negative")
            values[fname] = number
        rows[label] = ParticipantRow(label, values)
        row_lines[label] = line_no
    absent = [r for r in ROWS if r not in rows]
    if absent:
        last = body[-1][0]
        raise ParticipantFileError(source, last, "missing row(s): " + ", ".join(absent))
    warnings: list[str] = []
    total = rows["TOTAL"]
    for fname in FIELDS:
        diff = sum(rows[p][fname] for p in PARTICIPANTS) - total[fname]
        if diff == 0:
            continue
        if abs(diff) > SUM_TOLERANCE:
            raise ParticipantFileError(source, row_lines["TOTAL"], f"participants' {fname} sums "
                                       f"to {diff:+d} contracts off TOTAL {total[fname]}")
        warnings.append(f"{source}: participants' {fname} is {diff:+d} off TOTAL (NSE rounding)")
    return ParticipantFile(trade_date, kind, rows, tuple(warnings), source)


def _crore(value: object, source: str, line: int, what: str) -> float:
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        raise ParticipantFileError(source, line, f"{what} {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ParticipantFileError(source, line, f"{what} {value!r} is not a number")
    return number


def cash_category(name: str) -> str | None:
    """'FII' or 'DII' for a category name by prefix ("FII/FPI *", "DII **", "FPI"), else None."""
    text = name.strip().upper()
    if text.startswith(("FII", "FPI")):
        return "FII"
    if text.startswith("DII"):
        return "DII"
    return None


def parse_cash_json(text: str, source: str = "<text>") -> list[CashFlow]:
    """Parse NSE's FII/DII provisional cash figures (a JSON array, or {"data": [...]}).

    Returns one CashFlow per FII and DII entry, ordered FII then DII. Raises NotCsvError for an
    HTML body and ParticipantFileError for invalid JSON, a missing or unparsable field, a date
    that disagrees between entries, or a missing FII or DII entry. `line` in errors is the
    entry's 1-based position in the array.
    """
    if looks_like_html(text):
        raise NotCsvError(source, 0, "this is an HTML page, not NSE's FII/DII JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParticipantFileError(source, exc.lineno, f"not valid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, list):
        raise ParticipantFileError(source, 0, "expected a JSON array of FII/DII entries")
    flows: dict[str, CashFlow] = {}
    for pos, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise ParticipantFileError(source, pos, "entry is not an object")
        category = cash_category(str(entry.get("category", "")))
        if category is None:
            continue
        try:
            day = datetime.strptime(str(entry.get("date", "")).strip(), "%d-%b-%Y").date()
        except ValueError:
            raise ParticipantFileError(source, pos, f"date {entry.get('date')!r} is not "
                                                    "DD-Mon-YYYY") from None
        buy = _crore(entry.get("buyValue"), source, pos, "buyValue")
        sell = _crore(entry.get("sellValue"), source, pos, "sellValue")
        net = _crore(entry.get("netValue"), source, pos, "netValue")
        if abs(buy - sell - net) > 0.05:  # two-decimal rounding of each figure
            raise ParticipantFileError(source, pos, f"{category} net {net} is not buy {buy} "
                                                    f"- sell {sell}")
        if category in flows:
            raise ParticipantFileError(source, pos, f"{category} appears twice")
        if flows and next(iter(flows.values())).trade_date != day:
            raise ParticipantFileError(source, pos, "entries carry different dates")
        flows[category] = CashFlow(day, category, buy, sell, net)
    absent = [c for c in ("FII", "DII") if c not in flows]
    if absent:
        raise ParticipantFileError(source, 0, "missing " + " and ".join(absent) + " entry")
    return [flows["FII"], flows["DII"]]


# ---- metrics ----------------------------------------------------------------------------------

METRICS: tuple[str, ...] = (
    "index_futures_long", "index_futures_short", "index_futures_net", "index_futures_long_share",
    "index_calls_long", "index_calls_short", "index_calls_net",
    "index_puts_long", "index_puts_short", "index_puts_net", "options_bias",
    "stock_futures_net", "stock_calls_net", "stock_puts_net", "stock_options_net",
)
"""Per-participant position metrics (contracts; long share in % of long + short)."""
CHANGED_METRICS: tuple[str, ...] = tuple(m for m in METRICS if m != "index_futures_long_share")


def position_metrics(row: ParticipantRow) -> dict[str, float | int | None]:
    """Position metrics of one OI (or volume) row, keyed by METRICS.

    Nets are long - short; `index_futures_long_share` = long / (long + short) x 100 (None when
    both are zero); `options_bias` = index_calls_net - index_puts_net (net calls minus net puts:
    positive leans bullish); `stock_options_net` = stock_calls_net + stock_puts_net.
    """
    v = row.values
    fl, fs = v["future_index_long"], v["future_index_short"]
    cl, cs = v["option_index_call_long"], v["option_index_call_short"]
    pl, ps = v["option_index_put_long"], v["option_index_put_short"]
    stock_calls = v["option_stock_call_long"] - v["option_stock_call_short"]
    stock_puts = v["option_stock_put_long"] - v["option_stock_put_short"]
    return {
        "index_futures_long": fl,
        "index_futures_short": fs,
        "index_futures_net": fl - fs,
        "index_futures_long_share": (100.0 * fl / (fl + fs)) if fl + fs else None,
        "index_calls_long": cl,
        "index_calls_short": cs,
        "index_calls_net": cl - cs,
        "index_puts_long": pl,
        "index_puts_short": ps,
        "index_puts_net": pl - ps,
        "options_bias": (cl - cs) - (pl - ps),
        "stock_futures_net": v["future_stock_long"] - v["future_stock_short"],
        "stock_calls_net": stock_calls,
        "stock_puts_net": stock_puts,
        "stock_options_net": stock_calls + stock_puts,
    }


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """One participant on one trade date: METRICS plus `<metric>_change_<1d|1w|1m>` (None when
    the earlier day is not stored)."""

    participant: str
    trade_date: date
    metrics: dict[str, float | int | None]
    changes: dict[str, float | int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int | None]:
        """METRICS and changes flat, e.g. `index_futures_net_change_1d`."""
        return {**self.metrics, **self.changes}


def participant_views(
    today: ParticipantFile,
    earlier: Mapping[str, ParticipantFile | None],
) -> dict[str, ParticipantView]:
    """Metrics and changes for each participant of an OI file.

    `earlier` maps a horizon of CHANGE_LAGS ("1d", "1w", "1m") to the same kind's file that many
    trading days before (None when not stored); a change is today's value minus that day's.
    """
    out: dict[str, ParticipantView] = {}
    for name in PARTICIPANTS:
        metrics = position_metrics(today.rows[name])
        changes: dict[str, float | int | None] = {}
        for horizon in CHANGE_LAGS:
            before = earlier.get(horizon)
            base = position_metrics(before.rows[name]) if before is not None else None
            for metric in CHANGED_METRICS:
                now_value = metrics[metric]
                then = base[metric] if base is not None else None
                changes[f"{metric}_change_{horizon}"] = (
                    now_value - then if now_value is not None and then is not None else None
                )
        out[name] = ParticipantView(name, today.trade_date, metrics, changes)
    return out


@dataclass(frozen=True, slots=True)
class ProClientVolume:
    """Pro versus Client in one day's traded contracts (volume file).

    `*_share_pct`: the participant's long + short contracts over TOTAL's long + short, x 100.
    `*_long_pct`: the participant's index-direction long share: (index futures long + index
    calls long + index puts short) over those plus (index futures short + index calls short +
    index puts long), x 100; above 50 leans bullish. `divergence_pct` = pro_long_pct -
    client_long_pct in percentage points: positive when Pro trade more bullishly than Client.
    """

    trade_date: date
    pro_share_pct: float
    client_share_pct: float
    pro_long_pct: float | None
    client_long_pct: float | None
    divergence_pct: float | None


def _bullish_share(row: ParticipantRow) -> float | None:
    v = row.values
    bull = v["future_index_long"] + v["option_index_call_long"] + v["option_index_put_short"]
    bear = v["future_index_short"] + v["option_index_call_short"] + v["option_index_put_long"]
    return 100.0 * bull / (bull + bear) if bull + bear else None


def pro_client_volume(vol: ParticipantFile) -> ProClientVolume:
    """Pro versus Client shares and divergence of a volume file (see ProClientVolume)."""
    total = vol.rows["TOTAL"]["total_long"] + vol.rows["TOTAL"]["total_short"]

    def share(name: str) -> float:
        row = vol.rows[name]
        return 100.0 * (row["total_long"] + row["total_short"]) / total if total else 0.0

    pro, client = _bullish_share(vol.rows["Pro"]), _bullish_share(vol.rows["Client"])
    divergence = pro - client if pro is not None and client is not None else None
    return ProClientVolume(vol.trade_date, share("Pro"), share("Client"), pro, client, divergence)


@dataclass(frozen=True, slots=True)
class CashSummary:
    """One category's cash figures on a trade date with its streak and rolling sums (₹ crore).

    `streak`: consecutive trading days, ending on `trade_date`, with net of the same sign:
    +3 = three days of net buying, -2 = two days of net selling, 0 = flat net today. A day
    missing from history breaks it. `sum_5d`/`sum_20d`: net summed over the last 5/20 trading
    days that are stored; `days_5d`/`days_20d` say how many were.
    """

    trade_date: date
    category: str
    buy_cr: float
    sell_cr: float
    net_cr: float
    streak: int
    sum_5d: float
    days_5d: int
    sum_20d: float
    days_20d: int


def net_streak(nets: Sequence[float | None]) -> int:
    """Signed run length of same-sign nets ending at the last element (None breaks the run).

    `nets` are oldest first, one per trading day. Returns 0 for an empty sequence, a missing or
    zero last day.
    """
    if not nets or nets[-1] is None or nets[-1] == 0:
        return 0
    sign = 1 if nets[-1] > 0 else -1
    run = 0
    for value in reversed(nets):
        if value is None or value == 0 or (value > 0) != (sign > 0):
            break
        run += 1
    return sign * run


def rolling_sum(nets: Sequence[float | None], window: int) -> tuple[float, int]:
    """(sum, count) of the stored (non-None) values among the last `window` trading days."""
    if window <= 0:
        raise ValueError("window must be positive")
    tail = [v for v in nets[-window:] if v is not None]
    return float(sum(tail)), len(tail)


def cash_summary(history: Sequence[CashFlow | None]) -> CashSummary | None:
    """Summary for the last day of `history` (one entry per trading day of one category, oldest
    first, None where nothing is stored); None when the last day is missing."""
    if not history or history[-1] is None:
        return None
    last = history[-1]
    nets = [h.net_cr if h is not None else None for h in history]
    s5, d5 = rolling_sum(nets, 5)
    s20, d20 = rolling_sum(nets, 20)
    return CashSummary(last.trade_date, last.category, last.buy_cr, last.sell_cr, last.net_cr,
                       net_streak(nets), round(s5, 2), d5, round(s20, 2), d20)


def pro_client_divergence(oi: ParticipantFile) -> float | None:
    """Pro minus Client index-futures long share in an OI file, in percentage points.

    Long share = index futures long / (long + short) x 100 (see position_metrics). Positive
    when Pro hold proportionally more longs than Client; None when either holds no futures.
    This positioning divergence is the one traders watch (Client long share is often
    70-80 % while Pro sit near 45 %); ProClientVolume.divergence_pct is the same idea on
    the day's traded contracts.
    """
    pro = position_metrics(oi.rows["Pro"])["index_futures_long_share"]
    client = position_metrics(oi.rows["Client"])["index_futures_long_share"]
    if pro is None or client is None:
        return None
    return float(pro) - float(client)


def metric_series(
    files: Sequence[ParticipantFile | None], participant: str, metric: str,
    value_of: Callable[[ParticipantRow], dict[str, float | int | None]] = position_metrics,
) -> list[float | int | None]:
    """One participant's metric over a sequence of days (None where the day is missing)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: choose from {', '.join(METRICS)}")
    return [value_of(f.rows[participant])[metric] if f is not None else None for f in files]
