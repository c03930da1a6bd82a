"""A terminal driver that notices when the user's terminal has gone away, and says so once.

When a terminal closes, the kernel sends SIGHUP; a process started under `nohup` (or by an SSH
setup that ignores SIGHUP) never sees it. Its terminal then reads as end-of-file, or fails with
EIO, on every read and write. Textual's LinuxDriver (8.x) keeps selecting on such an input and
spins at full CPU (Textualize/textual PR #6690), and its writer thread dies on the first failed
write, after which the 31st queued write blocks the app forever. This driver treats end-of-file
or an I/O error on the terminal as the user having left: it posts `TerminalClosed` once, drops
further output instead of blocking, and lets the app exit cleanly. It also reads the size from
the terminal rather than from COLUMNS/LINES, so resizes are followed whatever the environment.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from codecs import getincrementaldecoder
from typing import IO, Any

from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

log = logging.getLogger(__name__)


class TerminalClosed(Message):
    """The terminal reached end-of-file or failed with an I/O error: nobody is there any more."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class _TerminalOutput:
    """The terminal's output file, with a failed write reported once and later writes dropped.

    Wraps the text file Textual's writer thread writes to, so an EIO on a hung-up terminal
    neither kills that thread (which would leave the app blocked on a full queue) nor repeats.
    """

    def __init__(self, file: IO[str], gone: Any) -> None:
        self._file = file
        self._gone = gone
        self.closed = False

    def write(self, text: str) -> int:
        if self.closed:
            return len(text)
        try:
            return self._file.write(text)
        except (OSError, ValueError) as exc:
            self._fail(exc)
            return len(text)

    def flush(self) -> None:
        if self.closed:
            return
        try:
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        self._gone(f"writing to the terminal failed: {exc}")

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class HangupAwareDriver(LinuxDriver):
    """LinuxDriver that exits the app when its terminal reads end-of-file or fails with EIO."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gone_lock = threading.Lock()
        self._gone_reason = ""
        self._file = _TerminalOutput(self._file, self._terminal_gone)  # type: ignore[assignment,arg-type]

    @property
    def terminal_gone(self) -> str:
        """Why the terminal counts as gone, or "" while it is there."""
        return self._gone_reason

    def _terminal_gone(self, reason: str) -> None:
        """Report the loss once (from whichever thread saw it first)."""
        with self._gone_lock:
            if self._gone_reason:
                return
            self._gone_reason = reason
        log.warning("the terminal went away (%s): optui exits", reason)
        self._app.post_message(TerminalClosed(reason))

    def _get_terminal_size(self) -> tuple[int, int]:
        """The terminal's own size, asked of the terminal itself.

        LinuxDriver uses shutil.get_terminal_size, which prefers the COLUMNS and LINES
        environment variables: when a shell or a parent process exported them, every resize
        would report that fixed size and the app would never follow the terminal.
        """
        output = self._file
        for fd in (self.fileno, output.fileno() if output is not None else self.fileno):
            try:
                size = os.get_terminal_size(fd)
            except (OSError, ValueError):
                continue
            if size.columns > 0 and size.lines > 0:
                return size.columns, size.lines
        return super()._get_terminal_size()

    def run_input_thread(self) -> None:
        """Read keys until the app stops or the terminal reads end-of-file / fails.

        The same loop as LinuxDriver's, except that an empty read or an OSError ends it (and
        the app) instead of being selected again at once, forever.
        """
        selector = selectors.SelectSelector()
        fileno = self.fileno
        selector.register(fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                for _key, mask in selector.select(0.1):
                    if not mask & selectors.EVENT_READ:
                        continue
                    try:
                        data = os.read(fileno, 1024 * 4)
                    except OSError as exc:
                        self._terminal_gone(f"reading the terminal failed: {exc}")
                        return
                    if not data:
                        self._terminal_gone("the terminal reached end of input")
                        return
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
