"""The one exception tree of meltica_nb.

Every error the engine raises descends from :class:`MelticaError`, so a caller can catch the
whole family with one ``except``::

    MelticaError
    ├── ConfigError                 bad configuration or arguments
    ├── DecimalError                decimal text that is not an exact fixed-point value
    │   ├── DecimalSyntaxError      not a decimal number at all
    │   └── DecimalOverflowError    does not fit an int64 mantissa at the exponent
    ├── PoolError                   misuse or exhaustion of a record pool
    │   ├── PoolExhausted           no free slot within the acquire timeout (backpressure)
    │   ├── PoolClosed              acquire after PoolManager.shutdown()
    │   ├── DoubleRelease           a free slot was released again
    │   ├── StaleHandle             a handle from an earlier generation of its slot
    │   └── UseAfterRelease         a released slot was written (debug poisoning)
    ├── CommandRefused              a control command that cannot be applied (failed ack)
    ├── TaskGroupError              misuse of a TaskGroup (start after it closed)
    ├── VenueError                  a venue connection or request failed
    │   ├── ConnectError            the venue could not be reached (refused, handshake failed)
    │   ├── RateLimited             the venue rate-limited or banned us (HTTP 429 / 418)
    │   ├── VenueUnavailable        the venue kept failing (5xx, timeouts) after bounded retries
    │   ├── ProtocolError           the venue answered outside its documented protocol
    │   └── RequestRejected         the venue refused a request as invalid (other 4xx)
    └── RecordingError              a recording that cannot be replayed as recorded (file:line)
        ├── RecordingFormatError    bad container or line: compression, truncation, not JSON
        └── RecordedMessageError    a recorded venue message that is malformed or unknown
"""

from __future__ import annotations

__all__ = [
    "CommandRefused",
    "ConfigError",
    "ConnectError",
    "DecimalError",
    "DecimalOverflowError",
    "DecimalSyntaxError",
    "DoubleRelease",
    "MelticaError",
    "PoolClosed",
    "PoolError",
    "PoolExhausted",
    "ProtocolError",
    "RateLimited",
    "RecordedMessageError",
    "RecordingError",
    "RecordingFormatError",
    "RequestRejected",
    "StaleHandle",
    "TaskGroupError",
    "UseAfterRelease",
    "VenueError",
    "VenueUnavailable",
]


class MelticaError(Exception):
    """Raised by meltica_nb; the root of every engine error."""


class ConfigError(MelticaError, ValueError):
    """Raised when a configuration value or argument is invalid."""


class DecimalError(MelticaError, ValueError):
    """Raised when decimal text cannot become an exact int64 mantissa."""


class DecimalSyntaxError(DecimalError):
    """Raised when the text is not a plain decimal number (``-12.340``)."""


class DecimalOverflowError(DecimalError):
    """Raised when a value needs more digits than the exponent allows or overflows int64."""


class PoolError(MelticaError):
    """Raised when a record pool is misused or cannot serve a request."""


class PoolExhausted(PoolError):
    """Raised when no free slot appeared before the acquire timeout; callers back off."""


class PoolClosed(PoolError):
    """Raised when acquiring from a pool whose manager has shut it down."""


class DoubleRelease(PoolError):
    """Raised when a slot that is already free is released again."""


class StaleHandle(PoolError):
    """Raised when a handle's generation no longer matches its slot (use after release)."""


class UseAfterRelease(PoolError):
    """Raised in debug mode when a released slot's poison was overwritten before reuse."""


class CommandRefused(MelticaError):
    """Raised when a control command cannot be applied; the bus answers with a failed ack.

    ``code`` is the :class:`meltica_nb.schema.ErrorCode` published in the ack record;
    ``venue_code`` the venue's own error code when the venue refused (Binance ``-1121``).
    """

    def __init__(self, code: int, message: str, venue_code: int | None = None):
        super().__init__(message)
        self.code = code
        self.venue_code = venue_code


class TaskGroupError(MelticaError, RuntimeError):
    """Raised when a TaskGroup is used after it closed."""


class VenueError(MelticaError):
    """Raised when talking to a venue failed; the root of the venue errors.

    The message never contains credentials (they are redacted before it is built).
    ``status`` is the HTTP status when there was one, ``code`` the venue's own error code
    (Binance ``{"code": -1121, ...}``) and ``retry_after_s`` the wait the venue asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


class ConnectError(VenueError):
    """Raised when the venue cannot be reached: refused, reset, or the handshake failed."""


class RateLimited(VenueError):
    """Raised when the venue rate-limits (429) or bans (418) us for longer than we may wait."""


class VenueUnavailable(VenueError):
    """Raised when the venue keeps failing (5xx, timeouts) after the bounded retries."""


class ProtocolError(VenueError):
    """Raised when the venue answers outside its documented protocol (unparsable reply)."""


class RequestRejected(VenueError):
    """Raised when the venue refuses a request as invalid (a 4xx other than 418/429)."""


class RecordingError(MelticaError):
    """Raised when a recording cannot be replayed as recorded; names the file and line.

    ``source`` is the file (or stream) name, ``line`` the 1-based line number (0 when the
    fault is in the container, before any line) and ``kind`` a short name of the fault
    (``"truncated line"``, ``"invalid JSON"``, ``"compression"``, ``"unknown message"`` ...).
    """

    def __init__(self, source: str, line: int, kind: str, detail: str = ""):
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {kind}" + (f": {detail}" if detail else ""))
        self.source = source
        self.line = line
        self.kind = kind


class RecordingFormatError(RecordingError):
    """Raised when a recording's container or line is broken: a wrong compression header, a
    truncated stream or line, a line that is not JSON or lacks the ``raw`` field."""


class RecordedMessageError(RecordingError):
    """Raised when a well-formed line holds a venue message its parser refuses (malformed,
    unknown, a bad value, an unknown symbol)."""
