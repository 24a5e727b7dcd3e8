"""Named points where a test can make the worker process die with SIGKILL.

Crash-safety tests run the real worker in a subprocess with `LEDGER_TEST_CRASH_AT` set to one of
`CRASH_POINTS`; when the anchoring reaches that point the process kills itself, as a power loss or
an OOM kill would, without running any cleanup. Production never sets the variable.
"""

import logging
import os
import signal

logger = logging.getLogger(__name__)

#: Environment variable naming the crash point, read at every point so tests need no restart.
CRASH_ENV = "LEDGER_TEST_CRASH_AT"

#: Crash points, each with the state the process leaves behind when it dies there.
CRASH_POINTS = {
    "anchor.before_send": "the signed anchor transaction is committed to the database but not sent",
    "anchor.after_send": "the node accepted the transaction, the database does not record it as sent",
    "anchor.after_record": "the database records the epoch as submitted, no receipt was read yet",
}


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when `LEDGER_TEST_CRASH_AT` equals `name`."""
    if name not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {name!r}; known points: {', '.join(CRASH_POINTS)}")
    if os.environ.get(CRASH_ENV) != name:
        return
    logger.warning("test.crash point=%s pid=%s", name, os.getpid())
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), signal.SIGKILL)
