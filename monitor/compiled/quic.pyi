"""Types of the compiled QUIC Initial tracker (monitor/compiled/quic.pyx) for mypy."""

from monitor.extract.quic import QuicClientHello
from monitor.values import FlowKey

class QuicInitialTracker:
    max_connections: int
    max_crypto_bytes: int
    timeout_s: float
    decrypt_failures: int
    retries: int
    crypto_overflows: int
    evictions: int

    def __init__(
        self,
        *,
        max_connections: int = 16384,
        max_crypto_bytes: int = 65536,
        timeout_s: float = 30.0,
    ) -> None: ...
    def __len__(self) -> int: ...
    def feed(self, flow: FlowKey, ts: float, datagram: bytes) -> QuicClientHello | None: ...
    def expire(self, now: float) -> int: ...
