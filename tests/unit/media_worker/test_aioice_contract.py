"""What media_worker/ice.py takes from aioice beyond its public API. If an aioice
release changes any of it, this fails before a call does (pyproject pins the range).

An upstream API would replace each: a pairing filter hook (for ``_pair_remote_candidate``
and ``_protocols``), a per-pair check delay (for ``check_start``, ``_check_list``,
``_nominated``, ``check_state``) and a gathering timeout option (for the ``timeout`` of
``get_component_candidates``)."""

import inspect

import aioice
import aioice.ice

from media_worker.ice import Connection


def test_the_private_members_we_use_are_there():
    connection = aioice.Connection(ice_controlling=True, components=1)
    for attribute in ("_check_list", "_nominated", "_protocols"):
        assert hasattr(connection, attribute), attribute
    assert isinstance(connection._check_list, list)
    assert isinstance(connection._nominated, dict)
    for method in ("_pair_remote_candidate", "check_start", "check_state",
                   "get_component_candidates", "query_consent"):
        assert callable(getattr(aioice.Connection, method, None)), method


def test_the_signatures_we_override_are_unchanged():
    gather = inspect.signature(aioice.Connection.get_component_candidates)
    assert list(gather.parameters) == ["self", "component", "addresses", "timeout"]
    assert list(inspect.signature(aioice.Connection.check_start).parameters) == [
        "self", "pair"]
    assert list(inspect.signature(aioice.Connection._pair_remote_candidate).parameters) == [
        "self", "remote_candidate"]
    assert issubclass(Connection, aioice.Connection)


def test_consent_hooks_are_what_we_replace():
    """Our RFC 7675 timing replaces aioice's ``query_consent``: connect() must still
    start it as a task it keeps in ``_query_consent_task`` (close() cancels that), and
    a check is ``build_request`` sent with ``protocol.request``."""
    connect = inspect.getsource(aioice.Connection.connect)
    assert "self.query_consent()" in connect and "_query_consent_task" in connect
    assert list(inspect.signature(aioice.Connection.build_request).parameters) == [
        "self", "pair", "nominate"]
    request = inspect.signature(aioice.ice.StunProtocol.request)
    assert {"request", "addr", "integrity_key", "retransmissions"} <= set(request.parameters)
    assert issubclass(aioice.stun.TransactionError, Exception)
    assert Connection.query_consent is not aioice.Connection.query_consent
