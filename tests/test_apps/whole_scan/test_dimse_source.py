# Copyright (c) mmlesion contributors. All rights reserved.
"""A rejection is reported as one, also where pynetdicom aborted the
association it had been answered on: the server rejected and closed the
connection before the requesting thread looked at the socket, and the
reply stayed unread (``mmlesion.apps.whole_scan.dimse_source``; the real
server's rejection is ``test_dimse.py``'s)."""
import pytest

pynetdicom = pytest.importorskip('pynetdicom')
from pynetdicom import AE  # noqa: E402
from pynetdicom.association import Association  # noqa: E402
from pynetdicom.pdu_primitives import A_ASSOCIATE  # noqa: E402

from mmlesion.apps.whole_scan.dimse_source import (  # noqa: E402
    DimseError, DimseSettings, DimseTransport, _rejection)


def _answered(result: int = 0x01, diagnostic: int = 0x07) -> Association:
    """An association in the state of the race: aborted, the server's
    A-ASSOCIATE reply unread in its queue (0x01 and 0x07: rejected
    permanently by the service user, called AE title not recognised)."""
    assoc = Association(AE(ae_title='MMLTEST'), mode='requestor')
    assoc.is_aborted = True
    reply = A_ASSOCIATE()
    reply.result, reply.result_source = result, 0x01
    reply.diagnostic = diagnostic
    assoc.dul.to_user_queue.put(reply)
    return assoc


def test_an_unread_rejection_is_the_rejection():
    reply = _rejection(_answered())
    assert reply is not None
    assert reply.reason_str == 'Called AE title not recognised'


def test_nothing_unread_or_an_acceptance_is_no_rejection():
    assoc = Association(AE(ae_title='MMLTEST'), mode='requestor')
    assoc.is_aborted = True
    assert _rejection(assoc) is None  # unreachable: nothing was answered
    assert _rejection(_answered(result=0x00, diagnostic=None)) is None


def test_the_error_names_the_rejection(monkeypatch):
    monkeypatch.setattr(AE, 'associate', lambda *a, **k: _answered())
    transport = DimseTransport(DimseSettings('127.0.0.1:11112', 'NOTTHERE'))
    with pytest.raises(DimseError) as raised:  # on entering
        transport._association('series query', ['1.2.3']).__enter__()
    assert str(raised.value) == (
        '--dimse 127.0.0.1:11112 (NOTTHERE): association rejected (series '
        'query: Called AE title not recognised): check --called-aet (the AE '
        'title of the server) and that the server lists --calling-aet '
        f'{DimseSettings("h:1", "A").calling_aet} with this host among its '
        'modalities')
