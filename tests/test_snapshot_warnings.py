"""Snapshot warnings are typed: consumers decide by kind, status lines keep their text."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from optui.models import LOSS_KINDS, SnapshotWarning, WarningKind


def test_text_is_subject_then_message() -> None:
    w = SnapshotWarning(WarningKind.MISSING_QUOTES, "NIFTY this_week",
                        "1 of 121 strikes missing a call or put quote")
    assert str(w) == "NIFTY this_week: 1 of 121 strikes missing a call or put quote"
    assert w == "NIFTY this_week: 1 of 121 strikes missing a call or put quote"
    assert f"warning: {w}" == "warning: NIFTY this_week: 1 of 121 strikes missing a call or put quote"
    assert (w.kind, w.subject) == (WarningKind.MISSING_QUOTES, "NIFTY this_week")
    offset = SnapshotWarning(WarningKind.CLOCK_OFFSET, "", "local clock 10 s ahead of the exchange's")
    assert str(offset) == "local clock 10 s ahead of the exchange's"


def test_kind_survives_copy_pickle_and_json() -> None:
    w = SnapshotWarning(WarningKind.STORE, "store", "database or disk is full")
    for again in (copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        assert again == w and again.kind is WarningKind.STORE and again.message == w.message
    back = SnapshotWarning.from_dict(json.loads(json.dumps(w.as_dict())))
    assert (back.kind, back.subject, back.message, str(back)) == (w.kind, w.subject, w.message, str(w))
    assert json.dumps([w]) == '["store: database or disk is full"]'
    with pytest.raises(ValueError):
        SnapshotWarning.from_dict({"kind": "nonsense", "subject": "", "message": "x"})


def test_only_store_and_files_mean_a_cycle_was_not_persisted() -> None:
    assert LOSS_KINDS == {WarningKind.STORE, WarningKind.FILES}
    assert WarningKind.CACHE not in LOSS_KINDS and WarningKind.ALERT_STORE not in LOSS_KINDS
