# Copyright (c) mmlesion contributors. All rights reserved.
"""A scan's DICOM results stored back into the study they came from
(STOW-RS, ``tools/infer_volume.py --dicomweb``; docs/dicom_server.md).

Never twice: the SR's and SEG's Series and SOP Instance UIDs are derived
from the source series, the model and the findings
(:mod:`~mmlesion.apis.whole_scan.write_dicom`), so the same results of the
same scan always carry the same UIDs; before each store the server is asked
(QIDO-RS) whether it holds that SOP Instance UID, and an instance it holds
is not sent again. A run killed between a store and anything it writes
afterwards therefore stores nothing twice when run again.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List

from .dicomweb_source import (DicomWebError, DicomWebSettings, SeriesRef,
                              server_error)

#: ``StoredFile.status`` values.
STORED, ON_SERVER = 'stored', 'on the server already'


@dataclass(frozen=True)
class StoredFile:
    """One result file and what became of it on the server.

    Args:
        kind (str): ``'sr'`` or ``'seg'``.
        sop_instance_uid (str): its SOP Instance UID.
        status (str): :data:`STORED` or :data:`ON_SERVER`.
    """
    kind: str
    sop_instance_uid: str
    status: str


def _on_server(client, study_uid: str, series_uid: str,
               sop_uid: str) -> bool:
    """Whether the server holds the instance (QIDO-RS; a series it does
    not know is an empty answer, or HTTP 404 on some servers)."""
    import requests
    try:
        found = client.search_for_instances(
            study_instance_uid=study_uid, series_instance_uid=series_uid,
            search_filters={'SOPInstanceUID': sop_uid})
    except requests.HTTPError as err:
        if err.response is not None and err.response.status_code == 404:
            return False
        raise
    return any(sop_uid in ((item.get('00080018') or {}).get('Value') or [])
               for item in found)


def store_scan_results(client, ref: SeriesRef, result_dir: Path,
                       settings: DicomWebSettings) -> List[StoredFile]:
    """Store the SR and SEG of a finished result set into ``ref``'s study,
    each unless the server holds it already.

    Args:
        client: :func:`~mmlesion.apis.whole_scan.dicomweb_source.
            dicomweb_client`.
        ref (SeriesRef): the source series.
        result_dir (Path): its result set (``findings.json`` names the
            DICOM files it wrote).
        settings (DicomWebSettings): named in errors.

    Returns:
        list[StoredFile]: one per DICOM file of the set (none when it has
        none, e.g. a scan without findings).

    Raises:
        DicomWebError: a store or query failed, or a file belongs to
            another study than its source series.
    """
    import pydicom
    record = json.loads((Path(result_dir) / 'findings.json').read_text())
    dicom = record.get('dicom') or {}
    out: List[StoredFile] = []
    if not dicom.get('written'):
        return out
    for kind in ('sr', 'seg'):
        name = dicom.get(kind)
        if not name:
            continue
        path = Path(result_dir) / name
        ds = pydicom.dcmread(str(path))
        if str(ds.StudyInstanceUID) != ref.study_uid:
            raise DicomWebError(
                f'{path}: Study Instance UID {ds.StudyInstanceUID} is not '
                f'that of its source series ({ref.study_uid}); not stored')
        uid = str(ds.SOPInstanceUID)
        what = f'{kind.upper()} {uid} of series {ref.series_uid}'
        try:
            if _on_server(client, ref.study_uid, str(ds.SeriesInstanceUID),
                          uid):
                out.append(StoredFile(kind, uid, ON_SERVER))
                continue
            client.store_instances([ds], study_instance_uid=ref.study_uid)
        except DicomWebError:
            raise
        except Exception as err:  # noqa: BLE001 (named by server_error)
            raise server_error(err, settings, f'STOW-RS {what}') from err
        out.append(StoredFile(kind, uid, STORED))
    return out
