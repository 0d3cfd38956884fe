"""Binary storage of the engine: output log, input journal, verify, replay and exports.

Formats: docs/log-format.md. The app calls `LogWriter.open` / `JournalWriter.open` once per
session, `append_tick` once per tick, `close()` at the end; `verify`, `export` and the replay
comparison (`compare_logs`) back the CLI commands of the same names.
"""

from engine_adapters.storage.alerts_json import AlertsFile, alert_from_json, alert_to_json
from engine_adapters.storage.journal import JournalTick, iter_journal
from engine_adapters.storage.journal_writer import JournalWriter, trim_journal
from engine_adapters.storage.log_reader import LogTick, RecoveryReport, iter_ticks
from engine_adapters.storage.log_writer import FsyncPolicy, LogWriter
from engine_adapters.storage.replay import ReplayReport, compare_logs
from engine_adapters.storage.segment import StorageError
from engine_adapters.storage.tables import export, read_log, read_log_frame
from engine_adapters.storage.verify import VerifyReport, VerifyStatus, verify

__all__ = [
    "AlertsFile", "FsyncPolicy", "JournalTick", "JournalWriter", "LogTick", "LogWriter",
    "RecoveryReport", "ReplayReport", "StorageError", "VerifyReport", "VerifyStatus",
    "alert_from_json", "alert_to_json", "compare_logs", "export", "iter_journal", "iter_ticks",
    "read_log", "read_log_frame", "trim_journal", "verify",
]
