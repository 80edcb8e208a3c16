"""Does the host say its clock is NTP-synchronised? One answer for preflight and the exporter.

IB's time alone cannot say which clock is wrong when host and Gateway disagree; the host's own
synchronisation state can. Sources, first that answers wins:

1. ``timedatectl show -p NTPSynchronized`` where systemd runs (it knows chrony, timesyncd, ntpd);
2. the kernel's ``adjtimex`` read without changing anything (``modes = 0``): unsynchronised when the
   ``STA_UNSYNC`` status flag is set or the call returns ``TIME_ERROR``.

Two versions used to exist: preflight read only adjtimex's return value through an untyped buffer,
the exporter also read the status flag through a typed ``struct timex``. The exporter's rule is the
one kept: the flag is what ``ntpd``/``chronyd`` clear once they discipline the clock, and a typed
struct is the documented call, so both consumers now report the same state for the same host.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from dataclasses import dataclass

STA_UNSYNC = 0x0040
"""``status`` flag: the clock is not synchronised (Linux, <sys/timex.h>)."""
TIME_ERROR = 5
"""adjtimex() return value: clock not synchronised."""
TIMEDATECTL_TIMEOUT = 2.0


@dataclass(frozen=True)
class NtpStatus:
    """``synchronised`` is None when no source could tell; ``source`` names the one that did."""

    synchronised: bool | None
    source: str


class _Timex(ctypes.Structure):
    """``struct timex`` (Linux, 64-bit and 32-bit alike through c_long)."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]  # fmt: skip


def timedatectl_synchronised() -> bool | None:
    """systemd's NTPSynchronized property; None where timedatectl is missing or says nothing clear."""
    if not shutil.which("timedatectl"):
        return None
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=TIMEDATECTL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip().lower()
    return {"yes": True, "no": False}.get(value) if out.returncode == 0 else None


def adjtimex_synchronised() -> bool | None:
    """The kernel's view, read-only (``modes = 0``); None where adjtimex is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return not (timex.status & STA_UNSYNC or state == TIME_ERROR)


def host_ntp_status() -> NtpStatus:
    """The first source that can tell, in the order above."""
    for source, reader in (("timedatectl", timedatectl_synchronised), ("adjtimex", adjtimex_synchronised)):
        state = reader()
        if state is not None:
            return NtpStatus(state, source)
    return NtpStatus(None, "")
