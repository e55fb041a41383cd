# Copyright (c) mmlesion contributors. All rights reserved.
"""A DICOMweb server as the source of a batch of scans
(``tools/infer_volume.py --dicomweb URL --query KEY=VALUE ...``,
docs/dicom_server.md): the series a query finds (QIDO-RS,
:func:`find_series`), each one checked from the server's metadata before
anything is retrieved (a localizer, a Secondary Capture or a series that is
not CT is skipped, with the reason), and retrieved (WADO-RS,
:func:`retrieve_series`) into a folder of its own, written whole or not at
all (a temporary folder renamed into place), which the batch then reads as
any DICOM folder (:func:`~mmlesion.datasets.volumes.load_ct_volume`).

Patient names are never logged or written: a series is named by its
Study and Series Instance UIDs.
"""
import os
import os.path as osp
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from mmlesion.utils.writing.atomic import TMP_PREFIX, fsync_dir

#: The attributes a ``--query`` may filter on (QIDO-RS search keys).
QUERY_KEYS = ('PatientID', 'StudyDate', 'Modality', 'BodyPartExamined',
              'SeriesDescription', 'StudyInstanceUID', 'SeriesInstanceUID',
              'AccessionNumber')
#: SOP classes read as CT slices (classic CT Image Storage).
CT_SOP_CLASSES = ('1.2.840.10008.5.1.4.1.1.2', )
#: The environment variable holding the server's password.
PASSWORD_ENV = 'MMLESION_DICOMWEB_PASSWORD'
_UID = re.compile(r'^[0-9]+(\.[0-9]+)*$')
_TAGS = dict(study='0020000D', series='0020000E', modality='00080060',
             sop_class='00080016', image_type='00080008',
             instances='00201209')


class DicomWebError(RuntimeError):
    """The server cannot be used (unreachable, credentials refused, a
    reply that is not DICOMweb): one line naming the URL and what to do."""


@dataclass(frozen=True)
class QueryFilter:
    """One QIDO-RS filter of a query (``--query KEY=VALUE``).

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


@dataclass(frozen=True)
class DicomWebSettings:
    """Where the scans of a run come from and whether their results go
    back (``--dicomweb``, ``--query``, ``--dicomweb-user``,
    ``--no-store``).

    Args:
        url (str): the DICOMweb root, e.g. ``http://pacs:8042/dicom-web``.
        query (tuple[QueryFilter, ...]): the QIDO-RS filters
            (:func:`parse_query`), each key at most once.
        user (str, optional): HTTP basic authentication user.
        password (str, optional): its password (the tool reads it from
            :data:`PASSWORD_ENV`, never from the command line).
        store_back (bool): store each scan's SR and SEG into its study
            (STOW-RS). Defaults to True.
        timeout_s (float): seconds to wait for each reply. Defaults to 60.

    Raises:
        ValueError: a query key given twice, an URL that is not http(s), a user without a password.
    """
    url: str
    query: Tuple[QueryFilter, ...] = ()
    user: Optional[str] = None
    password: Optional[str] = None
    store_back: bool = True
    timeout_s: float = 60.

    def __post_init__(self) -> None:
        if not re.match(r'^https?://[^/\s]+', self.url or ''):
            raise ValueError(f'--dicomweb {self.url!r}: not an http(s) URL '
                             '(e.g. http://pacs:8042/dicom-web)')
        keys = [f.key for f in self.query]
        for key in keys:
            if keys.count(key) > 1:
                raise ValueError(f'--query {key} given twice')
        if self.user and self.password is None:
            raise ValueError(f'--dicomweb-user {self.user}: set the password '
                             f'in the environment variable {PASSWORD_ENV}')


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
        key = key.strip()
        if key in [f.key for f in query]:
            raise ValueError(f'--query {key} given twice')
        query.append(QueryFilter(key, value.strip()))
    return tuple(query)


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


def dicomweb_client(settings: DicomWebSettings) -> Any:
    """A :class:`dicomweb_client.DICOMwebClient` for the settings (basic
    authentication where a user is given).

    Raises:
        ImportError: dicomweb-client is not installed (how to install).
    """
    try:
        import requests
        from dicomweb_client.api import DICOMwebClient
    except ImportError as err:
        raise ImportError(f'--dicomweb needs dicomweb-client ({err}): pip '
                          'install -r requirements/runtime.txt') from err
    session = requests.Session()
    if settings.user:
        session.auth = (settings.user, settings.password or '')
    client = DICOMwebClient(settings.url.rstrip('/'), session=session)
    client.set_http_retry_params(retry=False)
    _set_timeout(session, settings.timeout_s)
    return client


def _set_timeout(session, seconds: float) -> None:
    """Every request of the session waits at most ``seconds``."""
    request = session.request

    def timed(method, url, **kwargs):
        kwargs.setdefault('timeout', seconds)
        return request(method, url, **kwargs)

    session.request = timed


def server_error(err: Exception, settings: DicomWebSettings,
                 what: str) -> Exception:
    """A failed request as :class:`DicomWebError` (one line: the URL,
    what was asked, why, what to do); any other error unchanged."""
    import requests
    url = settings.url
    if isinstance(err, requests.ConnectionError):
        return DicomWebError(
            f'--dicomweb {url}: cannot connect ({what}): is the server '
            'running and the URL right (host, port, path)?')
    if isinstance(err, requests.Timeout):
        return DicomWebError(f'--dicomweb {url}: no answer within '
                             f'{settings.timeout_s:g} s ({what})')
    if isinstance(err, requests.HTTPError) and err.response is not None:
        code = err.response.status_code
        if code in (401, 403):
            return DicomWebError(
                f'--dicomweb {url}: the server refused the credentials '
                f'(HTTP {code}, {what}): check --dicomweb-user and '
                f'{PASSWORD_ENV}')
        return DicomWebError(f'--dicomweb {url}: HTTP {code} '
                             f'{err.response.reason} ({what})')
    if isinstance(err, (ValueError, requests.RequestException)):
        said = str(err).splitlines()[0] if str(err) else type(err).__name__
        return DicomWebError(f'--dicomweb {url}: {what} failed: {said}')
    return err


def _value(item: dict, key: str) -> List:
    return list((item.get(_TAGS[key]) or {}).get('Value') or [])


def _first(item: dict, key: str) -> str:
    values = _value(item, key)
    return str(values[0]) if values else ''


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID
    name = UID(uid).name
    return name if name != uid else f'SOP Class {uid}'


def _check_instances(client, ref: SeriesRef) -> Optional[str]:
    """Why the series cannot be a CT volume, from its instances' QIDO
    metadata (SOP Class, ImageType), or None."""
    instances = client.search_for_instances(
        study_instance_uid=ref.study_uid,
        series_instance_uid=ref.series_uid,
        fields=['00080016', '00080008'], get_remaining=True)
    if not instances:
        return 'the server lists no instance in it'
    classes = {_first(i, 'sop_class') for i in instances}
    if not classes & set(CT_SOP_CLASSES):
        names = ', '.join(sorted(_sop_class_name(c) for c in classes if c))
        return f'{names or "no SOP Class"}, not CT Image Storage'
    images = [i for i in instances
              if _first(i, 'sop_class') in CT_SOP_CLASSES]
    if all('LOCALIZER' in [str(v).upper() for v in _value(i, 'image_type')]
           for i in images):
        return 'a localizer (ImageType LOCALIZER)'
    return None


def find_series(client, settings: DicomWebSettings) -> FoundSeries:
    """The series matching ``settings.query`` (QIDO-RS), each checked from
    the server's metadata (module doc).

    Raises:
        DicomWebError: the server is unreachable, refuses the credentials
            or does not answer in DICOMweb.
    """
    found = FoundSeries()
    try:
        items = client.search_for_series(
            search_filters={f.key: f.value for f in settings.query},
            fields=['00080060', '00201209'], get_remaining=True)
    except Exception as err:  # noqa: BLE001 (named by server_error)
        raise server_error(err, settings, 'QIDO-RS series query') from err
    seen = set()
    for item in items:
        ref = SeriesRef(_first(item, 'study'), _first(item, 'series'),
                        _first(item, 'modality'))
        if ref.series_uid in seen:
            continue
        seen.add(ref.series_uid)
        bad = [name for name, uid in (('Study', ref.study_uid),
                                      ('Series', ref.series_uid))
               if not (_UID.match(uid) and len(uid) <= 64)]
        if bad:
            found.skipped.append(SkippedSeries(ref, f'{" and ".join(bad)} '
                                               'Instance UID is not a valid '
                                               'UID'))
            continue
        if ref.modality.upper() != 'CT':
            found.skipped.append(SkippedSeries(
                ref, f'modality {ref.modality or "(none)"}, not CT'))
            continue
        try:
            reason = _check_instances(client, ref)
        except Exception as err:  # noqa: BLE001 (named by server_error)
            raise server_error(err, settings,
                               f'QIDO-RS instances of series '
                               f'{ref.series_uid}') from err
        if reason:
            found.skipped.append(SkippedSeries(ref, reason))
        else:
            found.to_run.append(ref)
    return found


def retrieve_series(client, ref: SeriesRef, folder: Path,
                    settings: DicomWebSettings) -> Path:
    """Retrieve a series (WADO-RS) into ``folder/<Series Instance UID>/``,
    one file an instance, whole or not at all: written into a temporary
    folder beside it and renamed into place. A folder there already (a
    finished retrieval) is kept as it is.

    Returns:
        Path: the series folder.

    Raises:
        DicomWebError: the retrieval failed (the folder is then absent).
    """
    folder = Path(folder)
    target = folder / ref.series_uid
    if target.is_dir():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'{TMP_PREFIX}series-', dir=str(folder))
    try:
        count = 0
        try:
            for ds in client.iter_series(ref.study_uid, ref.series_uid):
                uid = str(getattr(ds, 'SOPInstanceUID', '') or '')
                if not _UID.match(uid):
                    uid = f'instance-{count:05d}'
                count += 1
                path = osp.join(tmp, f'{uid}.dcm')
                ds.save_as(path, enforce_file_format=True)
                with open(path, 'rb+') as f:
                    os.fsync(f.fileno())
        except Exception as err:  # noqa: BLE001 (named by server_error)
            raise server_error(err, settings, f'WADO-RS series '
                               f'{ref.series_uid}') from err
        if not count:
            raise DicomWebError(f'--dicomweb {settings.url}: series '
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

