"""Host side of a board running the lowbit shell: stream images over a serial port, check replies.

The same code drives a real board (``/dev/ttyUSB1``) and the Verilator whole-system simulation
(``socket://127.0.0.1:PORT``, :mod:`sim.system`): both are pyserial URLs. The frame layout and
CRC are :mod:`hw.protocol`'s; every class and logit is compared with the golden integer model.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from hw.protocol import DEFAULT_BAUD, ProtocolError, Status, byte_count, decode_reply, encode_request, reply_length
from quantmodels.errors import LowbitError
from quantmodels.golden import golden_forward, quantize_input
from quantmodels.ir import IRModel
from sim.harness import HarnessPorts
from sim.vectors import pack_rows, unpack_responses


class HostError(LowbitError):
    """The serial link or the board misbehaved (no reply, malformed reply, port not openable)."""


def open_port(url: str, baud: int = DEFAULT_BAUD, timeout: float = 2.0):
    """Open a pyserial port or URL (``/dev/ttyUSB1``, ``socket://host:port``, ``loop://``)."""
    import serial  # pyserial: only the host commands need it

    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=timeout)
    except (serial.SerialException, ValueError) as e:
        raise HostError(f"--port: {url[:100]!r} could not be opened ({str(e)[:150]})") from None


class BoardLink:
    """Requests and replies of :mod:`hw.protocol` over an open pyserial port."""

    def __init__(self, port, ports: HarnessPorts):
        self.port = port
        self.in_bytes = byte_count(ports.in_width)
        self.out_bytes = byte_count(ports.class_width + ports.logits_width)

    def send(self, frame: bytes) -> None:
        """Write raw bytes (a whole frame, or a deliberately broken one in tests)."""
        self.port.write(frame)
        self.port.flush()

    def _read(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise HostError(f"port {self.port.name}: {len(data)} of {n} reply bytes within {self.port.timeout} s "
                            "(board not running the lowbit shell, wrong baud rate, or not connected?)")
        return data

    def read_reply(self) -> tuple[Status, bytes]:
        """The next reply frame: (status, payload)."""
        head = self._read(reply_length(0) - 2)
        n = int.from_bytes(head[3:5], "little")
        if head[:2] != b"\x5a\xa5" or n > self.out_bytes:
            raise HostError(f"port {self.port.name}: reply starts {head.hex()}, expected 5aa5, status, "
                            f"LEN <= {self.out_bytes}")
        try:
            return decode_reply(head + self._read(n + 2))
        except ProtocolError as e:
            raise HostError(f"port {self.port.name}: {e}") from None

    def classify(self, payload: bytes) -> tuple[Status, bytes]:
        """Send one image's in_data bytes and wait for its reply."""
        if len(payload) != self.in_bytes:
            raise HostError(f"image: {len(payload)} bytes, expected {self.in_bytes}")
        self.send(encode_request(payload))
        return self.read_reply()


@dataclass(frozen=True)
class HostResult:
    """Outcome of streaming N images through a board (or its simulation)."""

    n_images: int
    mismatches: int  #: images whose class or any logit differs from golden
    class_mismatches: int
    first_bad: int | None
    accuracy: float | None  #: board class accuracy vs labels
    golden_accuracy: float | None
    retries: int  #: requests the board rejected (error reply) and that were sent again
    seconds: float  #: wall time of the stream
    images_per_s: float  #: wall-clock images/s as the host saw them

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.n_images > 0

    def to_json(self) -> dict:
        return {**asdict(self), "bit_exact": self.bit_exact}


def image_payloads(model: IRModel, samples: np.ndarray, ports: HarnessPorts) -> list[bytes]:
    """Each image's ``in_data`` vector (quantized as the golden model does) as request payload bytes."""
    nb = byte_count(ports.in_width)
    return [int(h, 16).to_bytes(nb, "little") for h in pack_rows(quantize_input(model, samples), model.input.bits)]


def decode_results(payloads: list[bytes], ports: HarnessPorts, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(classes, logits) of OK reply payloads."""
    words = [int.from_bytes(p, "little") for p in payloads]
    return unpack_responses(words, ports.class_width, ports.logits_width // n_classes, n_classes)


def stream_images(link: BoardLink, model: IRModel, samples: np.ndarray, labels: np.ndarray | None,
                  ports: HarnessPorts, max_retries: int = 3) -> HostResult:
    """Classify every image on the board and compare class and logits with the golden model.

    An error reply (the board detected a corrupted or lost byte) resends the image, at most
    ``max_retries`` times in a row."""
    gold = golden_forward(model, samples)
    got, retries = [], 0
    t0 = time.perf_counter()
    for i, payload in enumerate(image_payloads(model, samples, ports)):
        for attempt in range(max_retries + 1):
            status, reply = link.classify(payload)
            if status is Status.OK:
                break
            retries += 1
        else:
            raise HostError(f"image {i}: rejected {max_retries + 1} times by the board (last status {status.name})")
        if len(reply) != link.out_bytes:
            raise HostError(f"image {i}: reply payload of {len(reply)} bytes, expected {link.out_bytes}")
        got.append(reply)
    secs = time.perf_counter() - t0
    classes, logits = decode_results(got, ports, model.n_classes)
    bad_class = classes != gold.classes
    bad = bad_class | np.any(logits != gold.logits, axis=1)
    idx = np.flatnonzero(bad)
    n = len(samples)
    return HostResult(
        n_images=n, mismatches=int(bad.sum()), class_mismatches=int(bad_class.sum()),
        first_bad=int(idx[0]) if idx.size else None,
        accuracy=float(np.mean(classes == labels)) if labels is not None else None,
        golden_accuracy=float(np.mean(gold.classes == labels)) if labels is not None else None,
        retries=retries, seconds=secs, images_per_s=n / secs if secs > 0 else float("inf"))


def protocol_self_test(link: BoardLink, payload: bytes) -> dict[str, str]:
    """Send broken requests the shell must reject, then a good one; returns {check: status name}.

    ``corrupted``: one payload bit flipped (expects BAD_CRC); ``dropped``: one payload byte left out
    (expects TIMEOUT: the frame stays short); ``bad_length``: a header with LEN one too large and
    nothing after it (expects BAD_LENGTH); ``good``: the intact frame (expects OK)."""
    frame = encode_request(payload)
    body_at = 4  # header (2) + LEN (2)
    corrupted = bytearray(frame)
    corrupted[body_at] ^= 0x10
    dropped = frame[:body_at] + frame[body_at + 1:]
    bad_len = frame[:2] + (len(payload) + 1).to_bytes(2, "little")
    out = {}
    for name, f in (("corrupted", bytes(corrupted)), ("dropped", dropped), ("bad_length", bad_len), ("good", frame)):
        link.send(f)
        out[name] = link.read_reply()[0].name
    return out
