# Copyright (c) mmlesion contributors. All rights reserved.
"""DIMSE as the protocol of a DICOM server source (``--dimse HOST:PORT
--called-aet AET``; docs/dicom_server.md), with ``pynetdicom``: Study Root
C-FIND, C-GET (the images come back on the same association: no port of
ours to open) and C-STORE. Each operation opens its own association (a
batch may detect for longer than an archive keeps one idle).
"""
import contextlib
import functools
import re
import time
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

from mmlesion.utils.tool_defaults import tool_defaults
from .server_source import (CT_SOP_CLASSES, SERVER_TIMEOUT_S,
                            DicomServerError, InstanceInfo, QueryFilter,
                            SeriesRef, SeriesTransport, check_query,
                            check_timeout)

_AET = re.compile(r'^[\x20-\x5b\x5d-\x7e]{1,16}$')  # no backslash
#: C-FIND / C-GET statuses: pending (an answer follows), success.
_PENDING, _SUCCESS = (0xFF00, 0xFF01), 0x0000
#: C-STORE statuses that stored the instance (success, coercion, ...).
_STORED = (0x0000, 0xB000, 0xB006, 0xB007)
#: At most 128 presentation contexts an association (one is C-GET's).
_MAX_CONTEXTS = 127


class DimseError(DicomServerError):
    """The server cannot be used over DIMSE (unreachable, association
    rejected or aborted, a failed C-FIND, C-GET or C-STORE): one line
    naming the server and what to check."""


@dataclass(frozen=True)
class DimseSettings:
    """Where the scans of a run come from over DIMSE and whether their
    results go back (``--dimse``, ``--called-aet``, ``--calling-aet``,
    ``--query``, ``--no-store``).

    Args:
        address (str): the server's DICOM port, ``HOST:PORT``.
        called_aet (str): the server's AE title.
        calling_aet (str): ours, as the server lists it among its
            modalities. Defaults to ``'MMLESION'``.
        query (tuple[QueryFilter, ...]): the filters
            (:func:`~mmlesion.apps.whole_scan.server_source.parse_query`),
            each key at most once.
        store_back (bool): store each scan's SR and SEG into its study
            (C-STORE). Defaults to True.
        timeout_s (float): seconds to wait to connect and for each
            message (``--server-timeout``). Defaults to 60.

    Raises:
        ValueError: an address that is not HOST:PORT, an AE title that is
            not 1 to 16 characters without a backslash, a query key given
            twice, a timeout that is not a positive number.
    """
    address: str
    called_aet: str
    calling_aet: str = tool_defaults(__file__)['DimseSettings'][
        'calling_aet']
    query: Tuple[QueryFilter, ...] = ()
    store_back: bool = True
    timeout_s: float = SERVER_TIMEOUT_S

    def __post_init__(self) -> None:
        host, sep, port = (self.address or '').rpartition(':')
        if not (sep and host.strip() and port.isdigit()
                and 0 < int(port) < 65536):
            raise ValueError(f'--dimse {self.address!r}: write HOST:PORT, '
                             'the DICOM port of the server (e.g. '
                             'pacs.example:104)')
        for option, aet in (('--called-aet', self.called_aet),
                            ('--calling-aet', self.calling_aet)):
            if not (_AET.match(aet or '') and aet.strip()):
                raise ValueError(
                    f'{option} {aet!r}: an AE title is 1 to 16 characters, '
                    'not all spaces, without a backslash')
        check_query(self.query)
        check_timeout(self.timeout_s)

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return self.address.rpartition(':')[0].strip('[]')

    @property
    def port(self) -> int:
        """The server's DICOM port."""
        return int(self.address.rpartition(':')[2])

    def connect(self) -> 'DimseTransport':
        """The transport to this server (:class:`DimseTransport`)."""
        return DimseTransport(self)


@functools.lru_cache(maxsize=None)
def compressed_syntaxes() -> Tuple[str, ...]:
    """The compressed transfer syntaxes pydicom decodes here,
    with its pixel data plugins installed (requirements/runtime.txt):
    those a C-GET accepts besides the uncompressed ones, so that an
    archive sends what it stores (JPEG 2000, JPEG-LS, JPEG Lossless, RLE)
    without transcoding it."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes, UID
    from pynetdicom import DEFAULT_TRANSFER_SYNTAXES
    found = []
    for uid in AllTransferSyntaxes:
        if uid in DEFAULT_TRANSFER_SYNTAXES:
            continue
        try:
            if get_decoder(UID(uid)).is_available:
                found.append(str(uid))
        except NotImplementedError:  # no pixel data (e.g. video)
            continue
    return tuple(found)


def _status(status: Any) -> int:
    """The status code of a response, -1 when there is none (the
    association was aborted, or the answer did not come in time)."""
    return int(status.Status) if status is not None and 'Status' in \
        status else -1


class DimseTransport(SeriesTransport):
    """C-FIND, C-GET and C-STORE to the server of ``settings``.

    Raises:
        ImportError: pynetdicom is not installed (how to install).
    """

    def __init__(self, settings: DimseSettings) -> None:
        try:
            import pynetdicom  # noqa: F401
        except ImportError as err:
            raise ImportError(f'--dimse needs pynetdicom ({err}): pip '
                              'install -r requirements/runtime.txt') from err
        self.settings = settings
        self.name = f'--dimse {settings.address} ({settings.called_aet})'
        #: SOP classes of each series, from its C-FIND (the storage
        #: contexts its C-GET asks for).
        self._classes: Dict[str, set] = {}

    @contextlib.contextmanager
    def _association(self, what: str, contexts: Sequence[str],
                     storage: Sequence[str] = (),
                     handlers: Sequence = (),
                     transfer_syntax: Optional[str] = None) -> Iterator[Any]:
        """An association proposing ``contexts`` (SOP class UIDs, each in
        ``transfer_syntax`` or pynetdicom's uncompressed ones) and the
        ``storage`` SOP classes we receive (C-GET: our SCP role, each in
        the uncompressed syntaxes and in every syntax of
        :func:`compressed_syntaxes`, one context each as an acceptor takes
        one syntax a context), released at the end.

        Raises:
            DimseError: it cannot be made (unreachable, rejected).
        """
        from pynetdicom import AE, build_role
        s = self.settings
        ae = AE(ae_title=s.calling_aet)
        ae.connection_timeout = ae.acse_timeout = s.timeout_s
        ae.dimse_timeout = ae.network_timeout = s.timeout_s
        for uid in contexts:
            if transfer_syntax:
                ae.add_requested_context(uid, transfer_syntax)
            else:
                ae.add_requested_context(uid)
        for uid in storage:
            ae.add_requested_context(uid)
            for syntax in compressed_syntaxes():
                ae.add_requested_context(uid, syntax)
        unreachable = (f'{self.name}: cannot connect ({what}{{}}): is the '
                       f'DICOM server running, and {s.address} its DICOM '
                       'port (not its web port)?')
        try:
            assoc = ae.associate(
                s.host, s.port, ae_title=s.called_aet,
                ext_neg=[build_role(uid, scp_role=True) for uid in storage],
                evt_handlers=list(handlers))
        except OSError as err:  # e.g. a host name that does not resolve
            raise DimseError(unreachable.format(
                f': {err.strerror or err}')) from err
        reply = _rejection(assoc)
        if reply is not None:
            raise DimseError(
                f'{self.name}: association rejected ({what}: '
                f'{reply.reason_str}): check --called-aet (the AE title of '
                f'the server) and that the server lists --calling-aet '
                f'{s.calling_aet} with this host among its modalities')
        if not assoc.is_established:
            raise DimseError(unreachable.format(''))
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _no_answer(self, what: str, code: int,
                   started: float) -> DimseError:
        """The error of a request (sent at ``started``, monotonic) that
        got no success status: none at all (``code`` -1: the server ended
        the association, or did not answer in time) or a failure."""
        calling = self.settings.calling_aet
        if code == -1 and time.monotonic() - started < self.settings.timeout_s:
            return DimseError(
                f'{self.name}: the server aborted the association ({what}): '
                f'does it allow {what.split()[0]} from --calling-aet '
                f'{calling} (on Orthanc: DicomModalities)?')
        if code == -1:
            return DimseError(f'{self.name}: no answer within '
                              f'{self.settings.timeout_s:g} s ({what})')
        return DimseError(f'{self.name}: {what} failed with status '
                          f'0x{code:04X}: does the server allow '
                          f'{what.split()[0]} from --calling-aet {calling}?')

    def _find(self, level: str, keys: Dict[str, str], returned: Sequence[str],
              what: str, assoc=None) -> List[Any]:
        """The identifiers a Study Root C-FIND at ``level`` answers."""
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import \
            StudyRootQueryRetrieveInformationModelFind as FIND
        if assoc is None:
            with self._association(what, [FIND]) as assoc:
                return self._find(level, keys, returned, what, assoc)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for key in returned:
            setattr(identifier, key, '')
        for key, value in keys.items():
            setattr(identifier, key, value)
        answers, started = [], time.monotonic()
        if not any(c.abstract_syntax == FIND for c in
                   assoc.accepted_contexts):
            raise DimseError(
                f'{self.name}: the server does not accept C-FIND ({what}); '
                'it must offer the Study Root Query/Retrieve Find service')
        for status, found in assoc.send_c_find(identifier, FIND):
            code = _status(status)
            if code in _PENDING:
                if found is not None:
                    answers.append(found)
            elif code == _SUCCESS:
                return answers
            else:
                raise self._no_answer(f'C-FIND {what}', code, started)
        raise self._no_answer(f'C-FIND {what}', -1, started)

    def search_series(self, query: Sequence[QueryFilter]) -> List[SeriesRef]:
        """The studies matching the study-level filters, then their series
        matching the series-level ones (the query model's hierarchy, which
        every archive answers)."""
        from pynetdicom.sop_class import \
            StudyRootQueryRetrieveInformationModelFind as FIND
        study_keys = {f.key: f.value for f in query if f.level == 'STUDY'}
        series_keys = {f.key: f.value for f in query if f.level == 'SERIES'}
        refs = []
        with self._association('series query', [FIND]) as assoc:
            studies = self._find('STUDY', study_keys, ['StudyInstanceUID'],
                                 'study query', assoc)
            for study in studies:
                uid = str(study.get('StudyInstanceUID', '') or '')
                keys = dict(series_keys, StudyInstanceUID=uid)
                for item in self._find(
                        'SERIES', keys, ['SeriesInstanceUID', 'Modality'],
                        f'series query of study {uid}', assoc):
                    refs.append(SeriesRef(
                        uid, str(item.get('SeriesInstanceUID', '') or ''),
                        str(item.get('Modality', '') or '')))
        return refs

    def list_instances(self, ref: SeriesRef) -> List[InstanceInfo]:
        found = self._find(
            'IMAGE', dict(StudyInstanceUID=ref.study_uid,
                          SeriesInstanceUID=ref.series_uid),
            ['SOPInstanceUID', 'SOPClassUID', 'ImageType'],
            f'instances of series {ref.series_uid}')
        out = []
        for item in found:
            image_type = item.get('ImageType', None) or ()
            if isinstance(image_type, str):
                image_type = (image_type, )
            out.append(InstanceInfo(str(item.get('SOPClassUID', '') or ''),
                                    tuple(str(v) for v in image_type)))
        self._classes[ref.series_uid] = {i.sop_class for i in out
                                         if i.sop_class}
        return out

    def retrieve(self, ref: SeriesRef, save: Callable[[Any], None]) -> None:
        """C-GET of the series; the storage contexts asked for are those
        of its instances' SOP classes (its C-FIND)."""
        from pydicom.dataset import Dataset
        from pynetdicom import evt
        from pynetdicom.sop_class import \
            StudyRootQueryRetrieveInformationModelGet as GET
        what = f'C-GET series {ref.series_uid}'
        if ref.series_uid not in self._classes:
            self.list_instances(ref)
        classes = sorted(self._classes[ref.series_uid] | set(CT_SOP_CLASSES))
        classes = classes[:_MAX_CONTEXTS // (1 + len(compressed_syntaxes()))]
        failures: List[BaseException] = []

        def on_store(event) -> int:
            if failures:
                return 0xA700  # refuse the rest: the series is not whole
            try:
                ds = event.dataset
                ds.file_meta = event.file_meta
                save(ds)
            except BaseException as err:  # noqa: BLE001 (raised below)
                failures.append(err)
                return 0xA700
            return 0x0000

        identifier = Dataset()
        identifier.QueryRetrieveLevel = 'SERIES'
        identifier.StudyInstanceUID = ref.study_uid
        identifier.SeriesInstanceUID = ref.series_uid
        with self._association(what, [GET] + classes, classes,
                               [(evt.EVT_C_STORE, on_store)]) as assoc:
            started = time.monotonic()
            try:
                responses = assoc.send_c_get(identifier, GET)
            except ValueError as err:  # no accepted context for C-GET
                raise DimseError(
                    f'{self.name}: the server does not accept C-GET ({what}: '
                    f'{err}); it must offer the Study Root Query/Retrieve '
                    'Get service') from err
            code, failed = -1, 0
            for status, _ in responses:
                code = _status(status)
                failed = int(status.get('NumberOfFailedSuboperations', 0)
                             or 0) if code != -1 else failed
                if code not in _PENDING:
                    break
            if failures:
                raise failures[0]
            if code == _SUCCESS and not failed:
                return
            if failed:  # whatever the status (Orthanc: 0xC000)
                raise DimseError(
                    f'{self.name}: {what}: the server could not send '
                    f'{failed} instance(s) in a transfer syntax we accept '
                    '(uncompressed, or one of the '
                    f'{len(compressed_syntaxes())} compressed ones pydicom '
                    'decodes here): it stores them in another one and '
                    'cannot transcode it (its log names it): install '
                    "pydicom's plugins (pip install -r "
                    'requirements/runtime.txt); nothing kept')
            raise self._no_answer(what, code, started)

    def holds_instance(self, study_uid: str, series_uid: str, sop_uid: str,
                       what: str) -> bool:
        return bool(self._find(
            'IMAGE', dict(StudyInstanceUID=study_uid,
                          SeriesInstanceUID=series_uid,
                          SOPInstanceUID=sop_uid), [], what))

    def holds_series(self, study_uid: str, series_uid: str,
                     what: str) -> bool:
        return bool(self._find(
            'SERIES', dict(StudyInstanceUID=study_uid,
                           SeriesInstanceUID=series_uid), [], what))

    def store(self, ds: Any, what: str) -> None:
        what = f'C-STORE {what}'
        syntax = str(ds.file_meta.TransferSyntaxUID)
        with self._association(what, [str(ds.SOPClassUID)],
                               transfer_syntax=syntax) as assoc:
            started = time.monotonic()
            try:
                status = assoc.send_c_store(ds)
            except ValueError as err:  # its context was not accepted
                raise DimseError(
                    f'{self.name}: the server does not accept '
                    f'{ds.SOPClassUID.name} in {syntax} ({what})') from err
            code = _status(status)
            if code not in _STORED:
                raise self._no_answer(what, code, started)


def _rejection(assoc) -> Optional[Any]:
    """The server's A-ASSOCIATE-RJ reply to ``assoc`` (with its
    ``reason_str``), or None where it did not reject it.

    pynetdicom (3.0) can lose a rejection: when the server rejects and
    closes the connection before the requesting thread looks at the socket,
    that thread finds it closed and aborts, and the reply stays unread in
    the association's queue (against Orthanc on 2 cores with three busy
    processes beside it: 20 of 300, 22 of 200 and 33 of 300 rejections).
    It is read from there, so that a rejection is never reported as a
    server that cannot be reached.
    """
    if assoc.is_rejected:
        return assoc.acceptor.primitive
    if assoc.is_established:
        return None
    from pynetdicom.pdu_primitives import A_ASSOCIATE
    unread = assoc.dul.peek_next_pdu()
    if isinstance(unread, A_ASSOCIATE) and unread.result in (0x01, 0x02):
        return unread
    return None
