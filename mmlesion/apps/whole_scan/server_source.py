# Copyright (c) mmlesion contributors. All rights reserved.
"""A DICOM server as the source of a batch of scans, whatever its protocol
(a :class:`SeriesTransport`: DICOMweb or DIMSE; docs/dicom_server.md):
the query (:class:`QueryFilter`), the series it finds, each checked from
the server's metadata before anything is retrieved (:func:`find_series`),
and each series retrieved whole or not at all into a folder of its own
(:func:`retrieve_series`). Patient names are never logged or written: a
series is named by its Study and Series Instance UIDs.
"""
import abc
import os
import os.path as osp
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import TMP_PREFIX, fsync_dir

#: The attributes a ``--query`` may filter on, and the level of the
#: DICOM query model each belongs to (a DIMSE query asks for the studies,
#: then for their series).
QUERY_LEVELS = {
    'PatientID': 'STUDY', 'StudyDate': 'STUDY', 'Modality': 'SERIES',
    'BodyPartExamined': 'SERIES', 'SeriesDescription': 'SERIES',
    'StudyInstanceUID': 'STUDY', 'SeriesInstanceUID': 'SERIES',
    'AccessionNumber': 'STUDY'
}
#: The attributes a ``--query`` may filter on.
QUERY_KEYS = tuple(QUERY_LEVELS)
#: Seconds to wait to connect and for each answer of a server
#: (``--server-timeout``), whatever the protocol.
SERVER_TIMEOUT_S = tool_defaults(__file__)['SERVER_TIMEOUT_S']
#: SOP classes read as CT slices (classic CT Image Storage).
CT_SOP_CLASSES = ('1.2.840.10008.5.1.4.1.1.2', )
_UID = re.compile(r'^[0-9]+(\.[0-9]+)*$')


def is_uid(text: str) -> bool:
    """Whether ``text`` is a valid DICOM UID (digits and dots, at most 64
    characters): only such a UID becomes a file or folder name."""
    return bool(_UID.match(text or '')) and len(text) <= 64


class DicomServerError(RuntimeError):
    """The server cannot be used (unreachable, refused, an answer that is
    not what was asked): one line naming the server and what to do."""


@dataclass(frozen=True)
class QueryFilter:
    """One filter of a query (``--query KEY=VALUE``).

    Args:
        key (str): the attribute, one of :data:`QUERY_KEYS`.
        value (str): what it matches (``StudyDate`` as ``YYYYMMDD`` or a
            range ``YYYYMMDD-YYYYMMDD``; ``*`` and ``?`` wildcards where
            the server offers them).

    Raises:
        ValueError: a key not in :data:`QUERY_KEYS`, an empty value.
    """
    key: str
    value: str

    def __post_init__(self) -> None:
        if self.key not in QUERY_KEYS:
            raise ValueError(
                f'--query {self.key}={self.value}: {self.key!r} is not a '
                f'query key; use one of {", ".join(QUERY_KEYS)}')
        if not str(self.value).strip():
            raise ValueError(f'--query {self.key}=: give a value')

    @property
    def level(self) -> str:
        """``'STUDY'`` or ``'SERIES'`` (:data:`QUERY_LEVELS`)."""
        return QUERY_LEVELS[self.key]


def parse_query(items: Sequence[str]) -> Tuple[QueryFilter, ...]:
    """``['KEY=VALUE', ...]`` (``--query``) as filters, in their order.

    Raises:
        ValueError: an item without ``=``, a key given twice, a key not in
            :data:`QUERY_KEYS`, an empty value.
    """
    query: List[QueryFilter] = []
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise ValueError(f'--query {item}: write KEY=VALUE, e.g. '
                             'StudyDate=20240101-20240131')
        query.append(QueryFilter(key.strip(), value.strip()))
        check_query(query)
    return tuple(query)


def check_query(query: Sequence[QueryFilter]) -> None:
    """Refuse a key given twice (the settings of either protocol).

    Raises:
        ValueError: ``--query KEY given twice``.
    """
    keys = [f.key for f in query]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f'--query {key} given twice')


def check_timeout(seconds: float) -> None:
    """Refuse a timeout that is not a positive number (the settings of
    either protocol).

    Raises:
        ValueError: naming ``--server-timeout``.
    """
    if not seconds > 0 or seconds == float('inf'):
        raise ValueError(f'--server-timeout {seconds}: give a positive '
                         'number of seconds')


@dataclass(frozen=True)
class SeriesRef:
    """A series the query found.

    Args:
        study_uid (str): its Study Instance UID.
        series_uid (str): its Series Instance UID.
        modality (str): its Modality.
    """
    study_uid: str
    series_uid: str
    modality: str = ''


@dataclass(frozen=True)
class InstanceInfo:
    """What the server says of one instance of a series, before it is
    retrieved.

    Args:
        sop_class (str): its SOP Class UID.
        image_type (tuple[str, ...]): its ImageType values.
    """
    sop_class: str
    image_type: Tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedSeries:
    """A series the query found that is not run.

    Args:
        series (SeriesRef): the series.
        reason (str): why, in one line.
    """
    series: SeriesRef
    reason: str


@dataclass
class FoundSeries:
    """What :func:`find_series` found: the series to run and those
    skipped."""
    to_run: List[SeriesRef] = field(default_factory=list)
    skipped: List[SkippedSeries] = field(default_factory=list)


class SeriesTransport(abc.ABC):
    """How one protocol asks a DICOM server (each method raises
    :class:`DicomServerError` when the server cannot answer).

    Attributes:
        name (str): the server as the command line gave it (e.g.
            ``--dicomweb URL``), the start of every error line.
    """
    name: str

    @abc.abstractmethod
    def search_series(self, query: Sequence[QueryFilter]) -> List[SeriesRef]:
        """The series matching every filter of ``query``."""

    @abc.abstractmethod
    def list_instances(self, ref: SeriesRef) -> List[InstanceInfo]:
        """The instances of a series, from the server's metadata."""

    @abc.abstractmethod
    def retrieve(self, ref: SeriesRef, save: Callable[[Any], None]) -> None:
        """Retrieve every instance of a series, handing each one (a pydicom
        ``Dataset`` with its file meta) to ``save``."""

    @abc.abstractmethod
    def holds_instance(self, study_uid: str, series_uid: str, sop_uid: str,
                       what: str) -> bool:
        """Whether the server holds the instance (``what`` names it in
        errors)."""

    @abc.abstractmethod
    def holds_series(self, study_uid: str, series_uid: str,
                     what: str) -> bool:
        """Whether the server holds the series (``what`` names the
        question in errors)."""

    @abc.abstractmethod
    def store(self, ds: Any, what: str) -> None:
        """Store a data set into its study (``what`` names it in
        errors)."""


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID
    name = UID(uid).name
    return name if name != uid else f'SOP Class {uid}'


def series_problem(instances: Sequence[InstanceInfo]) -> Optional[str]:
    """Why a series of these instances cannot be a CT volume (no CT Image
    Storage, only localizers), or None."""
    if not instances:
        return 'the server lists no instance in it'
    classes = {i.sop_class for i in instances}
    if not classes & set(CT_SOP_CLASSES):
        names = ', '.join(sorted(_sop_class_name(c) for c in classes if c))
        return f'{names or "no SOP Class"}, not CT Image Storage'
    images = [i for i in instances if i.sop_class in CT_SOP_CLASSES]
    if all('LOCALIZER' in [str(v).upper() for v in i.image_type]
           for i in images):
        return 'a localizer (ImageType LOCALIZER)'
    return None


def find_series(transport: SeriesTransport,
                query: Sequence[QueryFilter]) -> FoundSeries:
    """The series matching ``query``, each checked from the server's
    metadata (invalid UIDs, not CT, localizers only: skipped).

    Raises:
        DicomServerError: the server cannot be queried.
    """
    found = FoundSeries()
    seen = set()
    for ref in transport.search_series(query):
        if ref.series_uid in seen:
            continue
        seen.add(ref.series_uid)
        bad = [name for name, uid in (('Study', ref.study_uid),
                                      ('Series', ref.series_uid))
               if not is_uid(uid)]
        if bad:
            found.skipped.append(SkippedSeries(ref, f'{" and ".join(bad)} '
                                               'Instance UID is not a valid '
                                               'UID'))
            continue
        if ref.modality.upper() != 'CT':
            found.skipped.append(SkippedSeries(
                ref, f'modality {ref.modality or "(none)"}, not CT'))
            continue
        reason = series_problem(transport.list_instances(ref))
        if reason:
            found.skipped.append(SkippedSeries(ref, reason))
        else:
            found.to_run.append(ref)
    return found


def retrieve_series(transport: SeriesTransport, ref: SeriesRef,
                    folder: Path) -> Path:
    """Retrieve a series into ``folder/<Series Instance UID>/``, one file
    an instance, whole or not at all (a temporary folder renamed into
    place); a folder there already is kept as it is.

    Returns:
        Path: the series folder.

    Raises:
        DicomServerError: the retrieval failed (the folder is then
            absent).
    """
    folder = Path(folder)
    target = folder / ref.series_uid
    if target.is_dir():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'{TMP_PREFIX}series-', dir=str(folder))
    count = [0]

    def save(ds) -> None:
        uid = str(getattr(ds, 'SOPInstanceUID', '') or '')
        if not is_uid(uid):
            uid = f'instance-{count[0]:05d}'
        count[0] += 1
        path = osp.join(tmp, f'{uid}.dcm')
        ds.save_as(path, enforce_file_format=True)
        with open(path, 'rb+') as f:
            os.fsync(f.fileno())

    try:
        transport.retrieve(ref, save)
        if not count[0]:
            raise DicomServerError(f'{transport.name}: series '
                                   f'{ref.series_uid} returned no instance')
        fsync_dir(tmp)
        try:
            os.rename(tmp, str(target))
        except OSError:
            if not target.is_dir():  # else: retrieved meanwhile, whole
                raise
        fsync_dir(str(folder))
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target
