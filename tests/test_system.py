"""Whole system under Verilator: UART RX -> shell -> network -> shell -> UART TX, driven by the host code.

The host (lowbit.host, the code that talks to a real board) streams digits test images over a
pyserial socket URL into the cocotb bridge, which drives the UART pins bit by bit; every class and
logit must equal the golden model's, and broken frames must be rejected with error replies.
"""
from __future__ import annotations

import numpy as np
import pytest

from quantmodels.errors import ConfigError
from hw.protocol import Status, baud_divider, crc16, decode_reply, encode_reply, encode_request, ProtocolError
from hw.shell import _CRC_MATRIX

pytestmark = pytest.mark.verilator


# ------------------------------------------------------------------ protocol (pure Python, fast)

def test_crc16_is_ccitt_false() -> None:
    # check value of CRC-16/CCITT-FALSE over "123456789" (the catalogue's reference)
    assert crc16(b"123456789") == 0x29B1


def test_crc_xor_network_matches_reference() -> None:
    """The shell's XOR network (one XOR per output bit) is the reference CRC for random inputs."""
    rng = np.random.default_rng(0)
    for c, b in rng.integers(0, [65536, 256], (3000, 2)):
        out = 0
        for o, (cs, bs) in enumerate(_CRC_MATRIX):
            out |= (sum(int(c) >> i & 1 for i in cs) + sum(int(b) >> i & 1 for i in bs)) % 2 << o
        assert out == crc16(bytes((int(b),)), int(c))


def test_reply_round_trip_and_rejections() -> None:
    frame = encode_reply(Status.OK, b"\x01\x02\x03")
    assert decode_reply(frame) == (Status.OK, b"\x01\x02\x03")
    bad = bytearray(frame)
    bad[6] ^= 1
    with pytest.raises(ProtocolError, match=r"^reply: CRC [0-9a-f]{4}, expected [0-9a-f]{4}$"):
        decode_reply(bytes(bad))
    with pytest.raises(ProtocolError, match=r"^reply: 9 bytes for LEN 3, expected 10$"):
        decode_reply(frame[:-1])
    assert encode_request(b"\xaa")[:4] == b"\xa5\x5a\x01\x00"


def test_baud_divider() -> None:
    assert baud_divider(12e6, 115200) == 104
    assert baud_divider(25e6, 115200) == 217
    with pytest.raises(ConfigError, match=r"^--baud: 3000000 at 1 MHz gives 0.33 cycles per bit, expected >= 4$"):
        baud_divider(1e6, 3_000_000)


def test_host_link_over_pyserial_loopback() -> None:
    """The host's reply reader on a real pyserial port (loop://): a good reply parses, a silent
    board and a reply with a bad CRC fail in one line naming the port."""
    from lowbit.host import BoardLink, HostError, open_port
    from sim.harness import HarnessPorts

    port = open_port("loop://", timeout=0.2)
    link = BoardLink(port, HarnessPorts("x", in_width=64, class_width=4, logits_width=60))
    link.send(encode_reply(Status.BAD_CRC))
    assert link.read_reply() == (Status.BAD_CRC, b"")
    with pytest.raises(HostError, match=r"^port loop://: 0 of 5 reply bytes within 0.2 s \(board not running"):
        link.read_reply()
    bad = bytearray(encode_reply(Status.OK, bytes(8)))
    bad[-1] ^= 0xFF
    link.send(bytes(bad))
    with pytest.raises(HostError, match=r"^port loop://: reply: CRC [0-9a-f]{4}, expected [0-9a-f]{4}$"):
        link.read_reply()
    with pytest.raises(HostError, match=r"^image: 3 bytes, expected 8$"):
        link.classify(b"abc")


# ------------------------------------------------------------------ whole system under Verilator

@pytest.fixture(scope="module")
def digits():
    from quantmodels.datasets import load_dataset

    return load_dataset("digits")


def _train(tmp_path_factory, arch: str, epochs: int):
    from lowbit.steps import train_and_save

    from quantmodels.datasets import load_dataset

    out = tmp_path_factory.mktemp("sysnet") / "net"
    return train_and_save("bnn", arch, load_dataset("digits"), "digits", out, seed=0, epochs=epochs, progress=False)


def test_system_small_net_default_run(digits) -> None:
    """Default-run check (small design, quick to compile): a random W1A1 net on 64 digits pixels,
    20 images bit-exact through the UART and every broken frame rejected."""
    from conftest import random_xnor_model
    from hw.folding import parse_folding
    from lowbit.sim_board import run_simulated

    model = random_xnor_model((64, 16, 10))
    r = run_simulated(model, parse_folding(model, None), digits.x_test[:20], None)
    assert r.host.n_images == 20 and r.host.mismatches == 0, f"first mismatching image {r.host.first_bad}"
    assert r.self_test == {"corrupted": "BAD_CRC", "dropped": "TIMEOUT", "bad_length": "BAD_LENGTH", "good": "OK"}


@pytest.mark.slow  # ~1.5 min each with a cold Verilator build on a loaded 2-core machine
@pytest.mark.parametrize("arch,epochs", [
    ("f64,f64", 4),  # MLP
    ("c8k3p1,p2,f32", 10),  # CNN: conv + max-pool, then dense
])
def test_system_bit_exact_and_rejects_broken_frames(tmp_path_factory, digits, arch, epochs) -> None:
    from hw.folding import parse_folding
    from lowbit.sim_board import run_simulated

    model = _train(tmp_path_factory, arch, epochs)
    n = 100
    r = run_simulated(model, parse_folding(model, None), digits.x_test[:n], digits.y_test[:n])
    assert r.host.n_images == n
    assert r.host.mismatches == 0, f"first mismatching image {r.host.first_bad}"
    assert r.host.retries == 0
    assert r.host.accuracy == r.host.golden_accuracy and r.host.accuracy > 0.5
    assert r.self_test == {"corrupted": "BAD_CRC", "dropped": "TIMEOUT", "bad_length": "BAD_LENGTH", "good": "OK"}
    assert r.run.framing_errors == 0
    # stop-and-wait over the UART: each image costs its request and reply bits on the wire, plus
    # the network's latency and a few bit times of host turnaround, nothing more
    from hw.network import NetworkTop
    from hw.protocol import byte_count, reply_length
    from lowbit.sim_board import SIM_DIVIDER

    net = NetworkTop(model, parse_folding(model, None))
    wire = (6 + byte_count(len(net.in_data)) + reply_length(byte_count(len(net.out_class) + len(net.out_logits))))
    wire_cycles = wire * 10 * SIM_DIVIDER
    assert n * wire_cycles <= r.stream_cycles <= n * (wire_cycles + net.latency_cycles + 40 * SIM_DIVIDER)
