"""Simulated IB Gateway speaking the TWS API socket protocol, with fault injection."""

from simulator.config import SimConfig
from simulator.server import Simulator
from simulator.testing import running_simulator

__all__ = ["SimConfig", "Simulator", "running_simulator"]
