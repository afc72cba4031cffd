"""A lock file that keeps two processes out of the same folder: a run folder, a download.

`hold` creates the lock file with ``O_EXCL`` (atomic on every local file
system), writes the owner's process id, host and start time into it, and
removes it when the block ends, however it ends. A second process that finds
the file refuses in one line naming the owner. A lock whose owner is gone (a
process killed with SIGKILL cannot remove its lock) is stale: on the same
host, a process id that no longer runs a Python program is taken over, so a
killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from alexnet_tut.errors import AlexnetTutError

#: Seconds after which a lock file without a readable owner counts as stale
#: (the owner was killed between creating the file and writing into it).
UNREADABLE_STALE_S = 30.0

_HELD: set[str] = set()  # the locks this process holds now


def _owner(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _process_runs(pid: int) -> bool:
    """Whether ``pid`` is a running Python process on this machine (a guess where /proc is missing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return True  # cannot tell: assume it runs
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False  # killed, not yet reaped by its parent
    if not command:
        return True  # starting up: cannot tell yet
    return b"python" in command.lower() or b"alexnet-tut" in command


def _is_stale(path: Path, owner: dict | None) -> bool:
    if owner is None:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_STALE_S
        except OSError:
            return True  # gone meanwhile
    if owner.get("host") != socket.gethostname():
        return False  # another machine's process: only its host can tell
    if owner["pid"] == os.getpid():
        return str(path) not in _HELD  # a killed process that had this process's id
    return not _process_runs(owner["pid"])


def _refusal(path: Path, owner: dict | None, what: str, hint: str) -> AlexnetTutError:
    if owner is None:
        who = "another process (its lock file is being written)"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
        who = f"process {owner['pid']} on {owner.get('host', '?')} (since {since})"
    return AlexnetTutError(
        f"{what} is in use by {who}: wait for it to finish, or {hint}; if no such process "
        f"runs any more, delete {path}")


def acquire(path: Path, what: str, hint: str) -> None:
    """Create the lock file ``path`` or raise `AlexnetTutError` naming its owner.

    ``what`` names the folder in the message (``"the run folder runs/x"``),
    ``hint`` the way out (``"choose another --out"``). A folder that cannot be
    written is a one-line error too.
    """
    path = Path(path)
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(path)
            if not _is_stale(path, owner):
                raise _refusal(path, owner, what, hint) from None
            # Take the stale lock over: rename it away first, so that of two
            # processes doing this at once only one removes it.
            aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, aside)
                aside.unlink()
            continue
        except OSError as error:
            raise AlexnetTutError(
                f"cannot write in {path.parent}: {error.strerror or error}; {hint}") from error
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, f)
        _HELD.add(str(path))
        return
    raise _refusal(path, _owner(path), what, hint)


def release(path: Path) -> None:
    """Remove the lock file if this process holds it (never another process's lock)."""
    path = Path(path)
    _HELD.discard(str(path))
    owner = _owner(path)
    if owner is not None and owner["pid"] == os.getpid() and owner.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def hold(path: Path, what: str, hint: str) -> Iterator[Path]:
    """Hold the lock file ``path`` for the block (see `acquire`); it is removed however the block ends."""
    acquire(path, what, hint)
    try:
        yield Path(path)
    finally:
        release(path)
