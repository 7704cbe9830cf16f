"""The seam between ``AsyncCurlMulti``'s driver and what runs on it.

The driver (native event core or pure Python, see _async.py) has explicit
states, as a connection has in h11; a transition not listed in
``TRANSITIONS`` is a bug and raises:

    UNBOUND  constructed, no event loop yet
    BOUND    the first add_handle() captured the running loop
    CLOSED   aclose() ran: timer and watchers gone, futures cancelled

``Port`` is all that _stream.py and _request.py use of the driver: the loop,
starting a transfer, pausing and resuming it (the socket and timer
callbacks that runs are the driver's own, not a sign of a foreign close),
failing it, and telling the driver that a request's callbacks ran.
"""

import asyncio
from typing import TYPE_CHECKING, Any, Dict, Tuple, cast

if TYPE_CHECKING:
    from ._async import AsyncCurlMulti
    from ._easy import Curl
    from ._request import _RequestState

UNBOUND = "unbound"
BOUND = "bound"
CLOSED = "closed"

TRANSITIONS: Dict[str, Tuple[str, ...]] = {
    UNBOUND: (BOUND, CLOSED),
    BOUND: (CLOSED,),
    CLOSED: (),
}


def check_transition(old: str, new: str) -> None:
    if new not in TRANSITIONS[old]:
        raise AssertionError("AsyncCurlMulti driver: no transition from %s to %s" % (old, new))


class Port(object):
    """What a stream or a request may do with its AsyncCurlMulti."""

    __slots__ = ("_acm",)

    def __init__(self, acm: "AsyncCurlMulti") -> None:
        self._acm = acm  # the driver: a Port reaches into its private state

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        # A stream or request has started its transfer: the driver is bound.
        return cast(asyncio.AbstractEventLoop, self._acm._loop)

    @property
    def closed(self) -> bool:
        return bool(self._acm._closed)

    @property
    def requests(self) -> "Dict[Any, _RequestState]":
        """Request object -> its state, for process() (the driver abandons
        them in aclose())."""
        return self._acm._requests

    def start(self, curl: "Curl") -> "asyncio.Future[Curl]":
        """add_handle(curl): the transfer's future."""
        return self._acm.add_handle(curl)

    def stop(self, curl: "Curl") -> None:
        """remove_handle(curl) (RuntimeError if not registered)."""
        self._acm.remove_handle(curl)

    def pause(self, curl: "Curl", bitmask: int) -> None:
        """curl.pause(bitmask) as one of the driver's own calls; raises."""
        self._acm._pause(curl, bitmask)

    def resume(self, curl: "Curl", bitmask: int) -> bool:
        """Clear a pause (bitmask: what stays paused, or PAUSE_CONT) and let
        libcurl's expired timers run soon; a failure ends the transfer with
        it.  True if resumed."""
        acm = self._acm
        try:
            acm._pause(curl, bitmask)
        except Exception as exc:
            acm._fail_transfer(curl, exc)
            return False
        acm._kick()
        return True

    def fail(self, curl: "Curl", exc: BaseException) -> None:
        """End a registered transfer now with exc."""
        self._acm._fail_transfer(curl, exc)

    def touched(self, state: "_RequestState") -> None:
        """A request's callbacks ran: poke it after the current batch."""
        self._acm._touched.append(state)
