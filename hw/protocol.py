"""The board's serial protocol: frame layout, CRC and status codes (the one place they are defined).

Pure Python (no Amaranth): :mod:`hw.shell` builds the hardware side from these constants, the host
(:mod:`lowbit.host`) encodes requests and decodes replies with the functions below.

Request (host -> board)::

    A5 5A | LEN_LO LEN_HI | payload (LEN bytes) | CRC_HI CRC_LO

Reply (board -> host)::

    5A A5 | STATUS | LEN_LO LEN_HI | payload (LEN bytes) | CRC_HI CRC_LO

* payload of a request: the network's ``in_data`` vector (element i at bits [i*bits +: bits]) as
  ``ceil(in_width / 8)`` little-endian bytes; LEN must equal that count.
* payload of an OK reply: ``{out_logits, out_class}`` (class in the low bits, logit j above it at
  [class_width + j*LW +: LW], two's complement) as little-endian bytes; error replies carry none.
* CRC: CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR), over
  LEN and payload of a request, over STATUS, LEN and payload of a reply. It detects every
  corrupted byte and every burst of up to 16 bits.
* A dropped byte leaves the frame short: the shell waits at most :data:`TIMEOUT_BYTES` byte times
  for the next byte, then replies TIMEOUT and hunts for the next header; if the following frame's
  bytes fill the gap instead, the CRC (or LEN) check fails. Either way the image is rejected with
  an error reply, never classified from misread bytes.
* Bytes outside a frame that are not a header are ignored (the shell hunts for ``A5 5A``).
* UART: 8 data bits, no parity, 1 stop bit, LSB first; the baud rate is the board's clock divided
  by a whole divider (see :func:`baud_divider`).
"""
from __future__ import annotations

import binascii
from enum import IntEnum

from quantmodels.errors import ConfigError

REQUEST_HEADER = bytes((0xA5, 0x5A))
REPLY_HEADER = bytes((0x5A, 0xA5))
TIMEOUT_BYTES = 16  #: byte times of silence inside a frame before the shell gives up on it
DEFAULT_BAUD = 115200


class Status(IntEnum):
    """Reply status byte."""

    OK = 0
    BAD_CRC = 1  #: the request's CRC did not match: a corrupted (or dropped) byte
    BAD_LENGTH = 2  #: LEN is not the network's input byte count
    TIMEOUT = 3  #: the frame stopped arriving before it was complete (a dropped byte)


class ProtocolError(ValueError):
    """A reply that does not parse (bad header, CRC or length)."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (binascii's crc_hqx is this CRC with the given start value)."""
    return binascii.crc_hqx(bytes(data), crc)


def byte_count(bits: int) -> int:
    """Bytes that carry a ``bits``-wide vector."""
    return (bits + 7) // 8


def baud_divider(clock_hz: float, baud: int) -> int:
    """Clock cycles per UART bit; refuses a rate the clock cannot make within 2 % (UART tolerance)."""
    div = round(clock_hz / baud)
    if div < 4:
        raise ConfigError(f"--baud: {baud} at {clock_hz / 1e6:g} MHz gives {clock_hz / baud:.2f} cycles per bit, expected >= 4")
    err = abs(clock_hz / div - baud) / baud
    if err > 0.02:
        raise ConfigError(f"--baud: {baud} at {clock_hz / 1e6:g} MHz is off by {err:.1%} with divider {div}, expected <= 2%")
    return div


def encode_request(payload: bytes) -> bytes:
    """One request frame carrying ``payload`` (an image's in_data bytes)."""
    body = len(payload).to_bytes(2, "little") + bytes(payload)
    return REQUEST_HEADER + body + crc16(body).to_bytes(2, "big")


def encode_reply(status: int, payload: bytes = b"") -> bytes:
    """One reply frame (what the shell sends; used by tests and as the reference of the hardware)."""
    body = bytes((int(status),)) + len(payload).to_bytes(2, "little") + bytes(payload)
    return REPLY_HEADER + body + crc16(body).to_bytes(2, "big")


def reply_length(payload_len: int) -> int:
    """Bytes of a reply frame with ``payload_len`` payload bytes."""
    return len(REPLY_HEADER) + 3 + payload_len + 2


def decode_reply(frame: bytes) -> tuple[Status, bytes]:
    """(status, payload) of one complete reply frame; ProtocolError if it is malformed."""
    if len(frame) < reply_length(0) or frame[:2] != REPLY_HEADER:
        raise ProtocolError(f"reply: {frame[:8].hex()}..., expected header {REPLY_HEADER.hex()}")
    status_byte, n = frame[2], int.from_bytes(frame[3:5], "little")
    if len(frame) != reply_length(n):
        raise ProtocolError(f"reply: {len(frame)} bytes for LEN {n}, expected {reply_length(n)}")
    body, crc = frame[2:-2], int.from_bytes(frame[-2:], "big")
    if crc16(body) != crc:
        raise ProtocolError(f"reply: CRC {crc:04x}, expected {crc16(body):04x}")
    try:
        status = Status(status_byte)
    except ValueError:
        raise ProtocolError(f"reply: status {status_byte}, expected one of {[int(s) for s in Status]}") from None
    return status, frame[5:-2]
