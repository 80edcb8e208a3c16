"""Does the host say its clock is NTP-synchronised? One answer for preflight and the exporter.

IB's time alone cannot say which clock is wrong when host and Gateway disagree; the host's own
synchronisation state can. It is read from the kernel with ``adjtimex`` without changing anything
(``modes = 0``, allowed without privileges, also inside a container): one system call, no process.

The rule is systemd's ``NTPSynchronized`` (what ``timedatectl`` reports): synchronised while the
kernel's maximum error is below 16 s. The kernel grows that error by 500 µs every second and
starts it at 16 s at boot; every NTP daemon (chrony, systemd-timesyncd, ntpd) resets it while it
disciplines the clock, so it stays small only while one does. The ``STA_UNSYNC`` status flag is not used: chrony
leaves it set unless ``rtcsync`` is configured, so a host chrony keeps in sync would read
unsynchronised.

Why not ask ``timedatectl`` itself: it reads the same kernel figure through D-Bus, and running it
meant a fork and exec every minute from the exporter's event loop (4.3 ms with the loop
waiting, plus ``systemd-timedated`` started on demand on a Pi), for the same answer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from dataclasses import dataclass

MAX_ERROR_LIMIT_US = 16_000_000
"""The kernel's maximum error (µs) at and above which the clock is not synchronised (NTP_PHASE_LIMIT,
the limit systemd's ``ntp_synced`` applies)."""


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


@functools.cache
def _adjtimex() -> Callable[..., int] | None:
    """libc's adjtimex, looked up once; None where the C library has none (not Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        adjtimex: Callable[..., int] = libc.adjtimex
        return adjtimex
    except (OSError, AttributeError):
        return None


def synchronised_by_max_error(max_error_us: int) -> bool:
    """systemd's rule: the kernel's maximum error below 16 s means a daemon disciplines the clock."""
    return max_error_us < MAX_ERROR_LIMIT_US


def adjtimex_synchronised() -> bool | None:
    """The kernel's view, read-only (``modes = 0``); None where adjtimex is not available or fails."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    timex = _Timex()
    if int(adjtimex(ctypes.pointer(timex))) < 0:
        return None
    return synchronised_by_max_error(int(timex.maxerror))


def host_ntp_status() -> NtpStatus:
    """The kernel's answer, or an unknown status where it cannot be read."""
    state = adjtimex_synchronised()
    return NtpStatus(state, "adjtimex" if state is not None else "")
