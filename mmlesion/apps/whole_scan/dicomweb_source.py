# Copyright (c) mmlesion contributors. All rights reserved.
"""DICOMweb as the protocol of a DICOM server source (``--dicomweb URL``;
docs/dicom_server.md), with ``dicomweb-client``: QIDO-RS, WADO-RS and
STOW-RS.
"""
import re
from dataclasses import dataclass
from typing import Any, Callable, List, NoReturn, Optional, Sequence, Tuple

from mmengine.logging import MMLogger

from .server_source import (SERVER_TIMEOUT_S, DicomServerError,
                            InstanceInfo, QueryFilter, SeriesRef,
                            SeriesTransport, check_query, check_timeout)

#: The environment variable holding the server's password.
PASSWORD_ENV = 'MMLESION_DICOMWEB_PASSWORD'
#: WADO-RS media type asking for each instance as the server stores it
#: (PS3.18 8.7.3.5.2): a server asked for Explicit VR Little Endian must
#: transcode, which fails for a syntax it cannot decode (Orthanc 1.10:
#: JPEG 2000, HTTP 500).
STORED_SYNTAX = (('application/dicom', '*'), )


class DicomWebError(DicomServerError):
    """The server cannot be used (unreachable, credentials refused, a
    reply that is not DICOMweb): one line naming the URL and what to do."""


@dataclass(frozen=True)
class DicomWebSettings:
    """Where the scans of a run come from and whether their results go
    back (``--dicomweb``, ``--query``, ``--dicomweb-user``,
    ``--no-store``).

    Args:
        url (str): the DICOMweb root, e.g. ``http://pacs:8042/dicom-web``.
        query (tuple[QueryFilter, ...]): the QIDO-RS filters
            (:func:`~mmlesion.apps.whole_scan.server_source.parse_query`),
            each key at most once.
        user (str, optional): HTTP basic authentication user.
        password (str, optional): its password (the tool reads it from
            :data:`PASSWORD_ENV`, never from the command line).
        store_back (bool): store each scan's SR and SEG into its study
            (STOW-RS). Defaults to True.
        timeout_s (float): seconds to wait to connect and for each reply
            (``--server-timeout``). Defaults to 60.

    Raises:
        ValueError: a query key given twice, an URL that is not http(s),
            a user without a password, a timeout that is not a positive
            number.
    """
    url: str
    query: Tuple[QueryFilter, ...] = ()
    user: Optional[str] = None
    password: Optional[str] = None
    store_back: bool = True
    timeout_s: float = SERVER_TIMEOUT_S

    def __post_init__(self) -> None:
        if not re.match(r'^https?://[^/\s]+', self.url or ''):
            raise ValueError(f'--dicomweb {self.url!r}: not an http(s) URL '
                             '(e.g. http://pacs:8042/dicom-web)')
        check_query(self.query)
        check_timeout(self.timeout_s)
        if self.user and self.password is None:
            raise ValueError(f'--dicomweb-user {self.user}: set the password '
                             f'in the environment variable {PASSWORD_ENV}')

    def connect(self) -> 'DicomWebTransport':
        """The transport to this server (:class:`DicomWebTransport`)."""
        return DicomWebTransport(self)


def dicomweb_client(settings: DicomWebSettings) -> Any:
    """A :class:`dicomweb_client.DICOMwebClient` for the settings.

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
    # the client passes its own timeout (default 20 s) to every request
    client = DICOMwebClient(settings.url.rstrip('/'), session=session,
                            timeout=settings.timeout_s)
    client.set_http_retry_params(retry=False)
    return client


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


def _value(item: dict, keyword: str) -> List:
    return list((item.get(_keyword_tag(keyword)) or {}).get('Value') or [])


def _first(item: dict, keyword: str) -> str:
    values = _value(item, keyword)
    return str(values[0]) if values else ''


#: A filter value sent to the server as it is: characters a URL carries
#: unencoded. Others (a ``*``, a space) are percent-encoded by the HTTP
#: library, which some servers (Orthanc 1.10 with DICOMweb 1.7) do not
#: decode before matching, so such a filter is matched here instead.
_URL_SAFE = re.compile(r'[A-Za-z0-9._~-]+')


def _split_query(query: Sequence[QueryFilter]
                 ) -> Tuple[List[QueryFilter], List[QueryFilter]]:
    """The filters the server matches and those matched on its answer."""
    on_server = [f for f in query if _URL_SAFE.fullmatch(f.value)]
    return on_server, [f for f in query if f not in on_server]


def _keyword_tag(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword
    return f'{tag_for_keyword(keyword):08X}'


def _matcher(wanted: QueryFilter) -> Callable[[dict], bool]:
    """The standard's matching of one attribute (PS3.4 C.2.2.2): ``*`` any
    run and ``?`` one character, every other character itself (``[`` too;
    case-sensitive; trailing padding ignored), as a test of a QIDO-RS
    answer's item."""
    pattern = re.compile(re.escape(wanted.value.strip()).replace(
        r'\*', '.*').replace(r'\?', '.'), re.DOTALL)
    return lambda item: any(pattern.fullmatch(str(v).strip())
                            for v in _value(item, wanted.key))


class DicomWebTransport(SeriesTransport):
    """QIDO-RS, WADO-RS and STOW-RS to the server of ``settings``.

    Args:
        settings (DicomWebSettings): the server.
        client (optional): a ``DICOMwebClient`` (default:
            :func:`dicomweb_client` of ``settings``).
    """

    def __init__(self, settings: DicomWebSettings,
                 client: Optional[Any] = None) -> None:
        self.settings = settings
        self.client = client if client is not None else dicomweb_client(
            settings)
        self.name = f'--dicomweb {settings.url}'

    def _raise(self, err: Exception, what: str) -> NoReturn:
        """Raise ``err`` as :func:`server_error` names it."""
        failed = server_error(err, self.settings, what)
        if failed is err:
            raise err
        raise failed from err

    def search_series(self, query: Sequence[QueryFilter]) -> List[SeriesRef]:
        """QIDO-RS; a filter value with a wildcard or a space is matched
        here on the answer (:data:`_URL_SAFE`)."""
        on_server, here = _split_query(query)
        tests = [_matcher(f) for f in here]
        try:
            items = self.client.search_for_series(
                search_filters={f.key: f.value for f in on_server},
                fields=['00080060', '00201209'] + [
                    _keyword_tag(f.key) for f in here], get_remaining=True)
        except Exception as err:  # noqa: BLE001 (named by server_error)
            self._raise(err, 'QIDO-RS series query')
        return [SeriesRef(_first(i, 'StudyInstanceUID'),
                          _first(i, 'SeriesInstanceUID'),
                          _first(i, 'Modality')) for i in items
                if all(test(i) for test in tests)]

    def list_instances(self, ref: SeriesRef) -> List[InstanceInfo]:
        try:
            items = self.client.search_for_instances(
                study_instance_uid=ref.study_uid,
                series_instance_uid=ref.series_uid,
                fields=['00080016', '00080008'], get_remaining=True)
        except Exception as err:  # noqa: BLE001 (named by server_error)
            self._raise(err, f'QIDO-RS instances of series {ref.series_uid}')
        return [InstanceInfo(_first(i, 'SOPClassUID'),
                             tuple(str(v) for v in _value(i, 'ImageType')))
                for i in items]

    def retrieve(self, ref: SeriesRef, save: Callable[[Any], None]) -> None:
        """WADO-RS in the transfer syntax the server stores
        (:data:`STORED_SYNTAX`; decoded here when the scan is read); a
        server that refuses to be asked so (HTTP 400 or 406, before any
        instance) is asked again for its default syntax, saying so."""
        import requests
        what, saved = f'WADO-RS series {ref.series_uid}', []
        for media_types in (STORED_SYNTAX, None):
            try:
                for ds in self.client.iter_series(
                        ref.study_uid, ref.series_uid,
                        media_types=media_types):
                    saved.append(save(ds))
                return
            except requests.HTTPError as err:
                code = getattr(err.response, 'status_code', None)
                if saved or media_types is None or code not in (400, 406):
                    self._raise(err, what)
                MMLogger.get_current_instance().warning(
                    f'{self.name}: {what}: HTTP {code} for '
                    'transfer-syntax=* (the syntax it stores); asking for '
                    'its default syntax, which it must transcode to')
            except Exception as err:  # noqa: BLE001 (named by server_error)
                self._raise(err, what)

    def holds_instance(self, study_uid: str, series_uid: str, sop_uid: str,
                       what: str) -> bool:
        """QIDO-RS; a series the server does not know is an empty answer,
        or HTTP 404 on some servers."""
        return any(sop_uid in _value(item, 'SOPInstanceUID')
                   for item in self._search(
                       self.client.search_for_instances, what,
                       study_instance_uid=study_uid,
                       series_instance_uid=series_uid,
                       search_filters={'SOPInstanceUID': sop_uid}))

    def holds_series(self, study_uid: str, series_uid: str,
                     what: str) -> bool:
        """QIDO-RS, as :meth:`holds_instance`."""
        return any(series_uid in _value(item, 'SeriesInstanceUID')
                   for item in self._search(
                       self.client.search_for_series, what,
                       study_instance_uid=study_uid,
                       search_filters={'SeriesInstanceUID': series_uid}))

    def _search(self, search: Callable[..., List[dict]], what: str,
                **kwargs) -> List[dict]:
        """A QIDO-RS search's answer; HTTP 404 (a study or series the
        server does not know, on some servers) is an empty one."""
        import requests
        try:
            return search(**kwargs)
        except requests.HTTPError as err:
            if err.response is not None and err.response.status_code == 404:
                return []
            self._raise(err, f'QIDO-RS {what}')
        except Exception as err:  # noqa: BLE001 (named by server_error)
            self._raise(err, f'QIDO-RS {what}')

    def store(self, ds: Any, what: str) -> None:
        try:
            self.client.store_instances(
                [ds], study_instance_uid=str(ds.StudyInstanceUID))
        except Exception as err:  # noqa: BLE001 (named by server_error)
            self._raise(err, f'STOW-RS {what}')
