"""Who may do what: the daemon's owner, and collaborators who share it.

Every request carries a ``principal`` (who sent it) and a ``role``:

- ``owner``: local clients (loopback ZeroMQ without CURVE, CURVE peers connecting from loopback, OSC from
  loopback; ``[bridge] local_owner = false`` makes them collaborators too) and CURVE keys the owner marked with ``segue keys issue NAME --owner``. The owner may do
  everything.
- ``collaborator``: every other CURVE key (principal = its name in ``keys_dir/clients``) and every
  other OSC sender (principal = ``osc:<host>``; OSC has no keys, so only its address tells senders apart). A collaborator may submit jobs and see,
  follow, fetch, cancel and resubmit its own jobs; other jobs do not exist for it (``not_found``, so
  their ids are not confirmed) unless the owner sets ``[bridge] share_jobs = true``. It may not load or
  unload models or stop the daemon (``not_allowed``).

A collaborator's jobs are stamped with its principal as their ``client`` (the name a client gives in
``hello`` is the owner's convenience, not an identity), so the rule survives restarts: the journal keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.jobs import JobNotFound
from bridge.protocol.schema import ProtocolError

if TYPE_CHECKING:
    from bridge.dispatcher import Dispatcher, Request

OWNER = "owner"
COLLABORATOR = "collaborator"
OWNER_ONLY = frozenset({"load_model", "unload_model", "shutdown"})
JOB_SCOPED = frozenset({"status", "cancel", "fetch_result", "events_since", "resubmit"})


def check(d: Dispatcher, r: Request, name: str, content: dict[str, Any]) -> None:
    """Raise unless ``r``'s role may make request ``name`` (with its validated ``content``)."""
    if r.role == OWNER:
        return
    if name in OWNER_ONLY:
        raise ProtocolError(
            "not_allowed",
            f"'{name}' is for the daemon's owner; collaborator {r.principal!r} may submit jobs and follow, "
            "fetch and cancel its own",
        )
    if name in JOB_SCOPED and not d.config.share_jobs:
        job_id = content["job_id"]
        if d.engine.status(job_id).client != r.principal:  # JobNotFound for a job that does not exist either
            raise JobNotFound(f"no job with id {job_id!r}")


def visible(d: Dispatcher, r: Request, client: str) -> bool:
    """May ``r`` see a job submitted by ``client`` (in listings)?"""
    return r.role == OWNER or d.config.share_jobs or client == r.principal
