"""A whole validation session rehearsed against the simulator, with faults on a timeline.

Split by job: :mod:`timeline` (scenario files and their time scaling), :mod:`processes` (child
processes and ports), :mod:`configs` (the generated gatewatch, Prometheus and Alertmanager
configuration), :mod:`observe` (reading the exporter, the simulator and Prometheus while it runs),
:mod:`runner` (the orchestration) and :mod:`checks` (the after-run invariants).
"""
