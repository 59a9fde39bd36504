"""The host code against the simulated board: build shell + network under Verilator and stream images.

:func:`run_simulated` is what ``lowbit run --sim`` and the system tests call: it generates the
whole-system Verilog (:mod:`hw.shell` around :class:`hw.network.NetworkTop`), compiles it
(cached), starts the :mod:`sim.system` bridge and runs :func:`lowbit.host.stream_images` over a
pyserial URL, exactly as on a board.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.folding import Folding
from hw.network import NetworkTop
from hw.protocol import TIMEOUT_BYTES, byte_count, reply_length
from hw.shell import SYSTEM_TOP, system_verilog
from quantmodels.ir import IRModel
from sim.harness import HarnessPorts
from sim.system import SystemRun, build_system, simulated_board

from .host import BoardLink, HostResult, image_payloads, open_port, protocol_self_test, stream_images

#: UART divider of the simulations: fast (the protocol is the same at any divider).
SIM_DIVIDER = 8
#: Host read timeout in the simulation: wall seconds, the simulator is much slower than a board.
SIM_READ_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SimulatedRun:
    """Host result, bridge measurements and the protocol self-test of one simulated session."""

    host: HostResult
    run: SystemRun
    self_test: dict[str, str]
    build_seconds: float
    build_cached: bool

    stream_cycles: int  #: simulated cycles from the first request bit to the last image's reply

    def images_per_s_at(self, clock_hz: float) -> float:
        """End-to-end images/s over the UART at ``clock_hz`` (SIMULATED cycles at this run's divider;
        the host waits for each reply before sending the next image)."""
        return self.host.n_images * clock_hz / self.stream_cycles


def system_ports(net: NetworkTop) -> HarnessPorts:
    """The stream widths the host needs, from the network top's public ports."""
    return HarnessPorts(SYSTEM_TOP, len(net.in_data), len(net.out_class), len(net.out_logits))


def run_simulated(model: IRModel, foldings: list[Folding], samples: np.ndarray, labels: np.ndarray | None,
                  divider: int = SIM_DIVIDER, popcount: str = "tree", self_test: bool = True) -> SimulatedRun:
    """Stream ``samples`` through the simulated whole system; then (``self_test``) the broken frames
    of :func:`lowbit.host.protocol_self_test`."""
    net = NetworkTop(model, foldings, popcount)
    ports = system_ports(net)
    build = build_system(system_verilog(net, divider), SYSTEM_TOP)
    # keep simulating long enough after the last line activity for the network to answer and
    # for the shell's timeout to fire on a short frame
    idle_bits = TIMEOUT_BYTES * 10 + net.latency_cycles // divider + 40
    with simulated_board(build, SYSTEM_TOP, divider, idle_bits) as run:
        port = open_port(run.url, timeout=SIM_READ_TIMEOUT_S)
        try:
            link = BoardLink(port, ports)
            host = stream_images(link, model, samples, labels, ports)
            checks = protocol_self_test(link, image_payloads(model, samples[:1], ports)[0]) if self_test else {}
        finally:
            port.close()
    stream_cycles = run.cycles_until_reply_byte(len(samples) * reply_length(byte_count(
        ports.class_width + ports.logits_width)))
    return SimulatedRun(host, run, checks, build.seconds, build.cached, stream_cycles)
