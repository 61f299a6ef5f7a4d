"""What a rank does when it fails, so the other ranks stop with a clear error instead of waiting.

A rank whose program dies of an exception tells every other rank (a short message on the
world's notices communicator), waits a moment for them to acknowledge, then aborts the job, so
no rank is left waiting. A rank waiting in a collective polls for such notices and raises
DistributedError naming the failed rank and its error; when that error ends its program in
turn, it acknowledges instead of telling the others again. A rank killed outright (SIGKILL, a
lost machine) sends nothing: the launcher ends the job (mpiexec does by default) or the waiting
ranks' timeout does."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from theanine.distributed.world import DistributedError

if TYPE_CHECKING:
    from theanine.distributed.world import World

NOTICE, ACK = 1, 2
GRACE = 5.0  # seconds a failed rank waits for the others to acknowledge before aborting


def install(world: World) -> None:
    """Make an uncaught exception on this rank tell the other ranks, then abort the job."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        try:
            _tell_others(world, kind, value)
        finally:
            world.MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook


def _tell_others(world: World, kind: type, value: BaseException) -> None:
    """Notify the other ranks of this rank's failure and wait (bounded) for their
    acknowledgements; a failure caused by another rank's notice is acknowledged instead."""
    notices, MPI = world.notices, world.MPI
    origin = getattr(value, "theanine_notice_from", None)
    if origin is not None:
        notices.isend(None, dest=origin, tag=ACK).wait()
        time.sleep(GRACE)  # the failed rank aborts the job once every rank has acknowledged
        return
    first = (str(value).splitlines() or [""])[0][:400]
    message = f"{kind.__name__}: {first}" if first else kind.__name__
    for r in range(world.size):
        if r != world.rank:
            notices.isend((world.rank, message), dest=r, tag=NOTICE)
    waiting = set(range(world.size)) - {world.rank}
    deadline = time.monotonic() + GRACE
    status = MPI.Status()
    while waiting and time.monotonic() < deadline:
        if notices.iprobe(source=MPI.ANY_SOURCE, tag=ACK, status=status):
            notices.recv(source=status.Get_source(), tag=ACK)
            waiting.discard(status.Get_source())
        else:
            time.sleep(0.005)


def check_notices(world: World, what: str) -> None:
    """Raise DistributedError if another rank has reported a failure."""
    MPI = world.MPI
    status = MPI.Status()
    if not world.notices.iprobe(source=MPI.ANY_SOURCE, tag=NOTICE, status=status):
        return
    origin, message = world.notices.recv(source=status.Get_source(), tag=NOTICE)
    world.broken = f"rank {origin} failed with {message}"
    error = DistributedError(f"rank {world.rank}: {what} stopped because {world.broken}")
    error.theanine_notice_from = origin
    raise error
