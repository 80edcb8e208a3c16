"""The local monitoring stack: Prometheus, Alertmanager and an SMTP sink run from the shipped files.

One home for starting them, used by ``gatewatch stack``, ``gatewatch rehearse``, the tests and the
benchmarks, so that what is rehearsed and tested is what the operator runs.
"""
