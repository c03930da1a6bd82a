"""What an InfluxDB write answer means: retry later, fix the credentials, or set lines aside.

The classes say what the write path does with a batch: `Unavailable` (unreachable, 5xx, 429) goes
to the spool, `CredentialsRejected` (401/403) is kept in the spool until the token is fixed,
`Rejected` (400) is data a retry cannot fix, `TooLarge` (413) a batch to split. For a 1.x "field
type conflict" the server names the field, measurement and type it was sent, which is enough to
pick the refused lines out of a batch without splitting it.
"""

from __future__ import annotations

import json
import re

from optui.errors import StoreError


class Unavailable(Exception):
    """The server cannot take the write now (unreachable or 5xx): spool and retry later."""


class Rejected(StoreError):
    """The server refused the data itself (HTTP 400): retrying the same lines cannot succeed.

    `reason` is the server's message; InfluxDB 1.x writes every line it could take and says
    "partial write" for the rest.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class TooLarge(Rejected):
    """The server refused a batch for its size (HTTP 413): smaller batches can succeed."""


class CredentialsRejected(StoreError):
    """The server refused the credentials (401/403): the data is fine, keep it until fixed."""


def token_hint(version: str) -> str:
    """What OPTUI_INFLUXDB_TOKEN must hold for a server of `version` ("1.8.10", "v2.7.1")."""
    if version.startswith("1"):
        return "set OPTUI_INFLUXDB_TOKEN to USER:PASSWORD of an InfluxDB 1.x user"
    return "set OPTUI_INFLUXDB_TOKEN to an API token with read/write access to the bucket"


def server_error(text: str) -> str:
    """The message of an error answer (JSON `{"error": ...}` or plain text), at most 300 characters,
    with the fix for a field type conflict."""
    try:
        message = str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        message = text
    message = message.strip()[:300]
    if "field type conflict" in message:
        message += " (a field changed type: keep each field's type, or use a new field name)"
    return message


_CONFLICT = re.compile(r'input field \\?"([^"\\]+)\\?" on measurement \\?"([^"\\]+)\\?" is type (\w+)')


def conflicting_lines(lines: list[str], reason: str) -> list[str]:
    """The lines a 1.x "field type conflict" message points at (field, measurement and the type
    sent are named); [] when the message names no field."""
    match = _CONFLICT.search(reason)
    if match is None:
        return []
    field, measurement, sent = match[1], match[2], match[3]
    value = {"integer": r"-?\d+i", "float": r"-?[\d.]+(?:[eE][-+]?\d+)?", "string": r'"',
             "boolean": r"(?:t|f|true|false|T|F|TRUE|FALSE)(?=[ ,])", "unsigned": r"\d+u"}.get(sent)
    if value is None:
        return []
    pattern = re.compile(rf"(?:^|[ ,]){re.escape(field)}={value}")
    out = []
    for line in lines:
        key, _, rest = line.partition(" ")
        if key.split(",", 1)[0] == measurement and pattern.search(" " + rest.rsplit(" ", 1)[0]):
            out.append(line)
    return out
