"""Host-side checks: NTP status, CPU and memory headroom, disk for Prometheus.

None of these needs the Gateway, so they run (and report) even when it is down.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from gatewatch.checks import CheckResult, failed, passed
from gatewatch.config import GatewatchConfig
from gatewatch.ib.ntp import NtpStatus, host_ntp_status
from probes.passive.procfs import HostCpu, host_memory


def check_ntp(status: NtpStatus | None = None) -> CheckResult:
    """The host's own view of its clock (:func:`gatewatch.ib.ntp.host_ntp_status`, as the exporter)."""
    name = "host clock NTP-synchronised"
    status = status or host_ntp_status()
    if status.synchronised is True:
        return passed(name, f"{status.source}: synchronised")
    if status.synchronised is False:
        return failed(
            name,
            f"{status.source}: NOT synchronised",
            "enable NTP (timedatectl set-ntp true, or chrony/systemd-timesyncd) and wait until "
            "it reports synchronised",
            blocking=False,
        )
    return CheckResult(name, "info", "NTP status not readable here; relying on the IB time comparison")


def check_cpu_memory(config: GatewatchConfig, sample_seconds: float = 0.5) -> list[CheckResult]:
    """Headroom now: a host already near its limits will miss quotes under load."""
    host_cpu = HostCpu()
    host_cpu.busy_ratio()
    time.sleep(sample_seconds)
    cpu = host_cpu.busy_ratio() or 0.0
    memory = host_memory()  # the exporter's gatewatch_host_* figures, by the same functions
    used, available_mib = memory.used_ratio, memory.available / 2**20
    limit_cpu, limit_mem = config.preflight.max_host_cpu_ratio, config.preflight.max_host_memory_ratio
    results = []
    if cpu <= limit_cpu:
        results.append(passed("host CPU headroom", f"CPU {cpu:.0%} in use (limit {limit_cpu:.0%})"))
    else:
        results.append(
            failed(
                "host CPU headroom",
                f"CPU {cpu:.0%} in use, above {limit_cpu:.0%}",
                "stop other work on this host (top shows what uses the CPU) or raise "
                "preflight.max_host_cpu_ratio",
            )
        )
    if used <= limit_mem:
        results.append(
            passed(
                "host memory headroom",
                f"{used:.0%} in use, {available_mib:.0f} MiB available (limit {limit_mem:.0%})",
            )
        )
    else:
        results.append(
            failed(
                "host memory headroom",
                f"{used:.0%} in use, above {limit_mem:.0%}",
                "free memory (stop unneeded services) or raise preflight.max_host_memory_ratio",
            )
        )
    return results


def check_disk(config: GatewatchConfig) -> CheckResult:
    """Prometheus must be able to keep the whole session's samples."""
    name = "disk space for Prometheus"
    path = Path(config.preflight.prometheus_data_path)
    if not path.exists():
        return failed(
            name,
            f"{path} does not exist",
            "create the folder or set preflight.prometheus_data_path to Prometheus's data folder",
        )
    free = shutil.disk_usage(path).free
    need = config.preflight.min_disk_free_bytes
    if free >= need:
        return passed(name, f"{free / 2**30:.1f} GiB free at {path} (need {need / 2**30:.1f} GiB)")
    return failed(
        name,
        f"only {free / 2**30:.2f} GiB free at {path}, need {need / 2**30:.1f} GiB",
        "free disk space (old Prometheus data, logs) or move the data folder",
    )
