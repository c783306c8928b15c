"""The `statsd` sink: plain StatsD lines over UDP (FEEDLINE_STATSD=host:port); no client library.

StatsD has no tags, so the series' dimensions become path segments:
`feedline.<feed>.<metric>[.<task>][.<state>]`, dots inside a segment turned into underscores. Seconds
are sent as timers in milliseconds (`|ms`), counts and bytes as counters (`|c`).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence

from feedline.errors import ContractError
from feedline.metrics.model import Metric, Unit

_PACKET = 1432  # fits one Ethernet frame with IP/UDP headers: no fragmentation
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def parse_address(value: str) -> tuple[str, int]:
    host, _, port = value.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ContractError(f"FEEDLINE_STATSD: {value!r} is not host:port; set it like localhost:8125")
    return host.strip("[]"), int(port)


class StatsdSink:
    name = "statsd"

    def __init__(self, address: str, *, prefix: str = "feedline") -> None:
        self.host, self.port = parse_address(address)
        self.prefix = prefix

    def emit(self, metrics: Sequence[Metric]) -> None:
        packets: list[str] = []
        for line in map(self.line, metrics):
            if packets and len(packets[-1]) + 1 + len(line) <= _PACKET:
                packets[-1] += "\n" + line
            else:
                packets.append(line)
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            for packet in packets:
                sock.sendto(packet.encode(), address)

    def line(self, metric: Metric) -> str:
        series = metric.series()
        feed = series.pop("Feed")
        path = ".".join([self.prefix, _safe(feed), metric.name, *map(_safe, series.values())])
        if metric.unit is Unit.SECONDS:
            return f"{path}:{_number(metric.value * 1000)}|ms"
        return f"{path}:{_number(metric.value)}|c"


def _safe(segment: str) -> str:
    return _UNSAFE.sub("_", segment)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.3f}".rstrip("0")
