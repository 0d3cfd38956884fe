"""Binary storage of the engine: output log, input journal, verify, replay and exports.

Formats: docs/log-format.md. The app calls `LogWriter.open` / `JournalWriter.open` once per
session, `append_tick` once per tick, `close()` at the end; `verify`, `export` and the replay
comparison (`compare_logs`) back the CLI commands of the same names.
"""

from typing import TYPE_CHECKING, Any

from engine_adapters.storage.alerts_json import AlertsFile, alert_from_json, alert_to_json
from engine_adapters.storage.journal import JournalTick, iter_journal
from engine_adapters.storage.journal_writer import JournalWriter, trim_journal
from engine_adapters.storage.log_reader import LogTick, RecoveryReport, iter_ticks
from engine_adapters.storage.log_writer import FsyncPolicy, LogWriter
from engine_adapters.storage.replay import ReplayReport, compare_logs
from engine_adapters.storage.segment import StorageError
from engine_adapters.storage.verify import VerifyReport, VerifyStatus, verify

if TYPE_CHECKING:
    from engine_adapters.storage.tables import export, read_log, read_log_frame
else:
    def _at_first_call(name: str) -> Any:
        """`tables.<name>`, imported at the first call: `tables` needs numpy, whose import
        is a measurable part of a `run`'s start-up, and `run` reads no table."""
        def call(*args: Any, **kwargs: Any) -> Any:
            from engine_adapters.storage import tables

            return getattr(tables, name)(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"`engine_adapters.storage.tables.{name}` (imported at the first call)."
        return call

    export = _at_first_call("export")
    read_log = _at_first_call("read_log")
    read_log_frame = _at_first_call("read_log_frame")

__all__ = [
    "AlertsFile", "FsyncPolicy", "JournalTick", "JournalWriter", "LogTick", "LogWriter",
    "RecoveryReport", "ReplayReport", "StorageError", "VerifyReport", "VerifyStatus",
    "alert_from_json", "alert_to_json", "compare_logs", "export", "iter_journal", "iter_ticks",
    "read_log", "read_log_frame", "trim_journal", "verify",
]
