"""NSE participant files and FII/DII cash JSON: parser on the real files, rejections, metrics.

Expected values are computed by hand from the fixture files' cells (tests/fixtures/README.md).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.participants import (
    COLUMNS,
    FIELDS,
    PARTICIPANTS,
    NotCsvError,
    ParticipantFileError,
    cash_category,
    cash_summary,
    net_streak,
    parse_cash_json,
    parse_participant_csv,
    participant_views,
    position_metrics,
    pro_client_divergence,
    pro_client_volume,
    rolling_sum,
)

pytestmark = pytest.mark.participants

HERE = Path(__file__).resolve().parent / "fixtures"
PART = HERE / "nse_participant"
CASH = HERE / "nse_fiidii_cash" / "fii_dii_cash_18-Sep-2026.json"

# (index futures net, index calls net, index puts net, options bias) per participant and day,
# by hand: long - short from the OI files' cells; bias = calls net - puts net.
EXPECTED_OI = {
    "14082026": {
        "FII": (25537 - 202235, 537355 - 814000, 975053 - 477877, -773821),
        "DII": (50830 - 20040, 7380 - 130, 50603 - 0, -43353),
        "Pro": (36280 - 46054, 1122941 - 986124, 1024818 - 964904, 76903),
        "Client": (211638 - 55956, 3205535 - 3072956, 2649873 - 3257565, 740271),
    },
    "17082026": {
        "FII": (-181587, -228525, 502455, -730980),
        "DII": (31039, 7310, 46308, -38998),
        "Pro": (-10043, 125614, 112002, 13612),
        "Client": (160591, 95601, -660766, 756367),
    },
    "18082026": {
        "FII": (-194158, -231661, 611080, -842741),
        "DII": (31073, 7270, 47208, -39938),
        "Pro": (-10711, -71246, 39113, -110359),
        "Client": (173796, 295638, -697400, 993038),
    },
}
# Warnings: (column, participants minus TOTAL) where the OI rows do not add up to TOTAL.
EXPECTED_WARNINGS = {
    "14082026": {("option_index_call_short", -1), ("option_index_put_short", -1)},
    "17082026": {("option_index_put_short", +1)},
    "18082026": {("option_index_call_long", +1), ("option_index_put_long", +1),
                 ("total_long", -1)},
}


counts = st.integers(min_value=0, max_value=10**8)
rows_strategy = st.fixed_dictionaries({f: counts for f in FIELDS})


def _read(name: str) -> str:
    return (PART / name).read_text()


@pytest.mark.parametrize("day", sorted(EXPECTED_OI))
def test_oi_files_parse_to_hand_computed_metrics(day: str) -> None:
    parsed = parse_participant_csv(_read(f"fao_participant_oi_{day}.csv"),
                                   f"fao_participant_oi_{day}.csv")
    assert parsed.kind == "oi"
    assert parsed.trade_date == date(int(day[4:]), int(day[2:4]), int(day[:2]))
    for name, (fut, calls, puts, bias) in EXPECTED_OI[day].items():
        m = position_metrics(parsed.rows[name])
        assert (m["index_futures_net"], m["index_calls_net"], m["index_puts_net"],
                m["options_bias"]) == (fut, calls, puts, bias)
    got = {(w.split("participants' ")[1].split(" ")[0], int(w.split(" is ")[1].split(" ")[0]))
           for w in parsed.warnings}
    assert got == EXPECTED_WARNINGS[day]


def test_fii_long_share_and_stock_nets_on_14_august() -> None:
    parsed = parse_participant_csv(_read("fao_participant_oi_14082026.csv"))
    m = position_metrics(parsed.rows["FII"])
    assert m["index_futures_long_share"] == pytest.approx(100 * 25537 / (25537 + 202235))
    assert m["stock_futures_net"] == 3535257 - 2910988
    assert m["stock_calls_net"] == 216502 - 415544
    assert m["stock_puts_net"] == 378403 - 211113
    assert m["stock_options_net"] == (216502 - 415544) + (378403 - 211113)


def test_day_change_between_consecutive_trading_days() -> None:
    days = {d: parse_participant_csv(_read(f"fao_participant_oi_{d}.csv")) for d in EXPECTED_OI}
    views = participant_views(days["18082026"], {"1d": days["17082026"], "1w": None})
    assert views["FII"].changes["index_futures_net_change_1d"] == -194158 - (-181587)
    assert views["Client"].changes["index_futures_net_change_1d"] == 173796 - 160591
    assert views["Pro"].changes["options_bias_change_1d"] == -110359 - 13612
    assert views["DII"].changes["index_futures_net_change_1w"] is None
    assert views["DII"].changes["index_futures_net_change_1m"] is None


def test_volume_files_give_pro_and_client_shares() -> None:
    vol = parse_participant_csv(_read("fao_participant_vol_14082026.csv"))
    assert vol.kind == "vol" and vol.warnings == ()
    pcv = pro_client_volume(vol)
    assert pcv.pro_share_pct == pytest.approx(100 * (45075015 + 44927046) / (2 * 85539491))
    assert pcv.client_share_pct == pytest.approx(100 * (35040747 + 35171845) / (2 * 85539491))
    pro_bull = 14588 + 20504048 + 19057167
    pro_bear = 13629 + 20454410 + 19156386
    client_bull = 27199 + 15928549 + 16257306
    client_bear = 20903 + 15990342 + 16135176
    assert pcv.divergence_pct == pytest.approx(
        100 * pro_bull / (pro_bull + pro_bear) - 100 * client_bull / (client_bull + client_bear))


def test_oi_divergence_is_pro_minus_client_futures_long_share() -> None:
    oi = parse_participant_csv(_read("fao_participant_oi_18082026.csv"))
    expected = 100 * 35523 / (35523 + 46234) - 100 * 226578 / (226578 + 52782)
    assert pro_client_divergence(oi) == pytest.approx(expected)
    assert round(expected, 1) == -37.7


# Pro and Client volume share (% of all traded contracts), by hand from the volume files.
EXPECTED_VOL_SHARE = {
    "14082026": ((45075015 + 44927046) / 171078982, (35040747 + 35171845) / 171078982),
    "17082026": ((74232918 + 74191054) / 274546902, (54535883 + 54596685) / 274546902),
    "18082026": ((165715606 + 165662861) / 572376638, (106630357 + 106466359) / 572376638),
}


@pytest.mark.parametrize("day", sorted(EXPECTED_VOL_SHARE))
def test_volume_share_on_every_fixture_day(day: str) -> None:
    vol = parse_participant_csv(_read(f"fao_participant_vol_{day}.csv"),
                                f"fao_participant_vol_{day}.csv")
    pro, client = EXPECTED_VOL_SHARE[day]
    pcv = pro_client_volume(vol)
    assert (pcv.pro_share_pct, pcv.client_share_pct) == (
        pytest.approx(100 * pro), pytest.approx(100 * client))
    assert vol.warnings == ()


@settings(max_examples=50, deadline=None)
@given(st.lists(rows_strategy, min_size=5, max_size=5))
def test_change_against_the_same_day_is_zero(rows: list[dict[str, int]]) -> None:
    from optui.analytics.participants import ROWS, ParticipantFile, ParticipantRow

    day = ParticipantFile(date(2026, 8, 18), "oi",
                          {n: ParticipantRow(n, r) for n, r in zip(ROWS, rows, strict=True)})
    for view in participant_views(day, {"1d": day, "1w": day, "1m": day}).values():
        assert all(v == 0 for v in view.changes.values())


def test_crlf_and_reordered_columns_parse_the_same() -> None:
    text = _read("fao_participant_oi_17082026.csv")
    lines = text.splitlines()
    # Swap two columns everywhere, header included: values follow their header, not position.
    swapped = []
    for line in lines[1:]:
        cells = line.split(",")
        cells[1], cells[6] = cells[6], cells[1]
        swapped.append(",".join(cells))
    crlf = "\r\n".join([lines[0], *swapped]) + "\r\n"
    a = parse_participant_csv(text)
    b = parse_participant_csv(crlf)
    assert a.rows == b.rows and a.trade_date == b.trade_date


def _mutate(line_no: int, old: str, new: str) -> str:
    lines = _read("fao_participant_oi_14082026.csv").splitlines()
    assert old in lines[line_no - 1]
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "line", "reason"), [
    (_mutate(4, "50830", "50,830"), 4, "16 cells where the header has 15"),
    (_mutate(5, "25537", "n/a"), 5, "not a whole number"),
    (_mutate(3, "211638", "211650"), 7, "sums to +12 contracts off TOTAL 324285"),
    (_mutate(4, "50830", '"50,830"'), 0, "parses: a quoted thousands separator is a number"),
    ("\n".join(row for row in _read("fao_participant_oi_14082026.csv").splitlines()
               if not row.startswith("DII")), 6, "missing row(s): DII"),
    (_mutate(1, "Aug 14, 2026", "Aug 15, 2026"), 1, "disagrees with the file name"),
    (_mutate(2, "Future Index Long,", "Fut Idx Lng,"), 2, "missing column(s): future index long"),
    (_mutate(6, "Pro,", "Prop,"), 6, "unexpected row 'Prop'"),
])
def test_malformed_files_are_rejected_naming_line_and_reason(text: str, line: int,
                                                             reason: str) -> None:
    if reason.startswith("parses"):
        parsed = parse_participant_csv(text, "fao_participant_oi_14082026.csv")
        assert parsed.rows["DII"]["future_index_long"] == 50830
        return
    with pytest.raises(ParticipantFileError) as err:
        parse_participant_csv(text, "fao_participant_oi_14082026.csv")
    assert err.value.line == line
    assert reason in err.value.reason
    assert "fao_participant_oi_14082026.csv" in str(err.value)


def test_html_error_page_is_not_csv() -> None:
    with pytest.raises(NotCsvError, match="HTML page"):
        parse_participant_csv("<!DOCTYPE html><html><body>Access Denied</body></html>", "x.csv")


def test_cash_json_prefix_matched_categories() -> None:
    flows = parse_cash_json(CASH.read_text(), CASH.name)
    assert [(f.category, f.buy_cr, f.sell_cr, f.net_cr) for f in flows] == [
        ("FII", 38461.63, 37862.09, 599.54), ("DII", 17310.04, 16290.35, 1019.69)]
    assert flows[0].trade_date == date(2026, 9, 18)
    data = json.loads(CASH.read_text())
    data[0]["category"], data[1]["category"] = "DII **", "FII/FPI *"
    again = parse_cash_json(json.dumps(data))
    assert [f.net_cr for f in again] == [599.54, 1019.69]
    assert cash_category("FPI") == "FII" and cash_category("Total") is None


def test_cash_json_rejects_missing_category_and_bad_number() -> None:
    data = json.loads(CASH.read_text())
    with pytest.raises(ParticipantFileError, match="missing FII"):
        parse_cash_json(json.dumps(data[:1]))
    data[1]["netValue"] = "abc"
    with pytest.raises(ParticipantFileError, match="netValue"):
        parse_cash_json(json.dumps(data))


def test_streaks_and_rolling_sums() -> None:
    assert net_streak([-5.0, 10.0, 20.0, 1.0]) == 3
    assert net_streak([5.0, -1.0, -2.0]) == -2
    assert net_streak([5.0, None, 3.0]) == 1
    assert net_streak([]) == 0
    assert rolling_sum([1.0, None, 2.0, 3.0], 3) == (5.0, 2)


# ---- properties ---------------------------------------------------------------------------



@settings(max_examples=60, deadline=None)
@given(st.lists(rows_strategy, min_size=4, max_size=4), st.permutations(list(COLUMNS)),
       st.booleans(), st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
def test_any_valid_file_round_trips(rows: list[dict[str, int]], order: list[str], crlf: bool,
                                    day: date) -> None:
    """A file written in any column order and line ending parses back to its numbers."""
    total = {f: sum(r[f] for r in rows) for f in FIELDS}
    names = {v: k.title() + "  " for k, v in COLUMNS.items()}
    inverse = {k: v for k, v in COLUMNS.items()}
    header = "Client Type," + ",".join(names[inverse[h]] for h in order)
    body = [f"{n}," + ",".join(str(r[inverse[h]]) for h in order)
            for n, r in zip((*PARTICIPANTS, "TOTAL"), (*rows, total), strict=True)]
    title = f'""Participant wise Open Interest as on {day:%b} {day.day}, {day.year}"",,,,'
    text = ("\r\n" if crlf else "\n").join([title, header, *body])
    parsed = parse_participant_csv(text)
    assert parsed.trade_date == day and parsed.warnings == ()
    for name, row in zip(PARTICIPANTS, rows, strict=True):
        assert parsed.rows[name].values == row


@settings(max_examples=100, deadline=None)
@given(rows_strategy)
def test_metric_identities(values: dict[str, int]) -> None:
    from optui.analytics.participants import ParticipantRow

    m = position_metrics(ParticipantRow("FII", values))
    assert m["index_futures_net"] == m["index_futures_long"] - m["index_futures_short"]
    assert m["options_bias"] == m["index_calls_net"] - m["index_puts_net"]
    share = m["index_futures_long_share"]
    assert share is None or 0.0 <= share <= 100.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=-1e5, max_value=1e5)), max_size=40))
def test_streak_properties(nets: list[float | None]) -> None:
    streak = net_streak(nets)
    assert abs(streak) <= len(nets)
    if streak:
        tail = nets[-abs(streak):]
        assert all(v is not None and (v > 0) == (streak > 0) and v != 0 for v in tail)
    s5, d5 = rolling_sum(nets, 5)
    assert d5 == sum(v is not None for v in nets[-5:])
    assert s5 == pytest.approx(sum(v for v in nets[-5:] if v is not None))


def test_cash_summary_over_history() -> None:
    from optui.analytics.participants import CashFlow

    days = [CashFlow(date(2026, 9, d), "FII", 0.0, 0.0, n)
            for d, n in zip((14, 15, 16, 17, 18), (-100.0, 50.0, 60.0, -1.0, 599.54), strict=True)]
    summary = cash_summary([*days[:3], None, days[4]])
    assert summary is not None
    assert summary.streak == 1  # the missing 17th breaks the run
    assert summary.sum_5d == pytest.approx(-100 + 50 + 60 + 599.54) and summary.days_5d == 4
    assert cash_summary(days).streak == 1 and cash_summary(days[:3]).streak == 2
