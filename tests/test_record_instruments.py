"""The INSTRUMENTS record: the rows the recorder writes are the dump's fields, the expiry as ISO
text, exactly as `dataclasses.asdict` gave them, and read back to the same Instruments."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date

import pytest

from optui.collectors.record_format import encode_json, instrument_rows, instruments_from_record
from optui.collectors.sim_source import SimulatedSource
from optui.models import Instrument

pytestmark = pytest.mark.unit


def test_instrument_rows_are_the_fields_of_each_instrument_and_read_back_the_same() -> None:
    dump = SimulatedSource(seed=7).instruments()
    index = Instrument(256265, 1001, "NIFTY 50", "NIFTY 50", 0.0, None, 0.0, 0.0, 0, "EQ", "INDICES", "NSE")
    dump = [*dump[:200], index]
    rows = instrument_rows(dump)
    # The bytes the earlier conversion wrote (asdict, the expiry left to the JSON encoder).
    assert encode_json({"rows": rows, "warnings": []}) == encode_json(
        {"rows": [asdict(i) for i in dump], "warnings": []})
    assert rows[-1]["expiry"] is None and rows[-1]["tradingsymbol"] == "NIFTY 50"
    assert isinstance(rows[0]["expiry"], str) and date.fromisoformat(rows[0]["expiry"]) == dump[0].expiry
    back, notes = instruments_from_record(json.loads(encode_json({"rows": rows, "warnings": []})))
    assert back == dump and notes == []
