# Copyright (c) mmlesion contributors. All rights reserved.
"""A scan's DICOM results stored back into the study they came from
(docs/dicom_server.md), never twice: the same results of the same scan
carry the same UIDs (:mod:`~mmlesion.apis.whole_scan.write_dicom`), and an
instance the server holds already is not sent again, so a run killed
after a store stores nothing twice when run again. Nothing is stored into
a study whose source series the server no longer holds (deleted while the
scan ran): the store would make a study holding only our results.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List

from .server_source import DicomServerError, SeriesRef, SeriesTransport

#: ``StoredFile.status`` values.
STORED, ON_SERVER = 'stored', 'on the server already'
#: Folder beside the result sets of a run that records each store begun.
STARTED_STORES = '.stores_started'


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


def store_scan_results(transport: SeriesTransport, ref: SeriesRef,
                       result_dir: Path) -> List[StoredFile]:
    """Store the SR and SEG of a finished result set into ``ref``'s study,
    each unless the server holds it already.

    Args:
        transport (SeriesTransport): the server.
        ref (SeriesRef): the source series.
        result_dir (Path): its result set (``findings.json`` names the
            DICOM files it wrote).

    Returns:
        list[StoredFile]: one per DICOM file of the set (none when it has
        none, e.g. a scan without findings).

    Raises:
        DicomServerError: a store or query failed, a file belongs to
            another study than its source series, or the server no longer
            holds that series (nothing stored).
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
            raise DicomServerError(
                f'{path}: Study Instance UID {ds.StudyInstanceUID} is not '
                f'that of its source series ({ref.study_uid}); not stored')
        uid = str(ds.SOPInstanceUID)
        what = f'{kind.upper()} {uid} of series {ref.series_uid}'
        if transport.holds_instance(ref.study_uid,
                                    str(ds.SeriesInstanceUID), uid, what):
            out.append(StoredFile(kind, uid, ON_SERVER))
            continue
        if not any(f.status == STORED for f in out):  # asked once
            _check_source_on_server(transport, ref)
        # before the store: a run killed after it sees what it sent
        record_store_started(result_dir, kind, uid)
        transport.store(ds, what)
        out.append(StoredFile(kind, uid, STORED))
    return out


def store_started_file(result_dir: Path, kind: str) -> Path:
    """Where the store of a result set's SR or SEG is recorded as begun:
    ``<folder of the sets>/.stores_started/<set>.<kind>``."""
    result_dir = Path(result_dir)
    return result_dir.parent / STARTED_STORES / f'{result_dir.name}.{kind}'


def record_store_started(result_dir: Path, kind: str, uid: str) -> None:
    """Record (atomically) that the store of ``uid`` is about to be sent:
    a run killed between the store and its table can then tell its own
    store from one an earlier run made (``server.csv``)."""
    from mmlesion.utils.writing.atomic import atomic_write_text
    atomic_write_text(str(store_started_file(result_dir, kind)), uid + '\n')


def _check_source_on_server(transport: SeriesTransport,
                            ref: SeriesRef) -> None:
    """Refuse to store beside a source series the server no longer holds.

    Raises:
        DicomServerError: one line naming the series and its study.
    """
    if not transport.holds_series(ref.study_uid, ref.series_uid,
                                  f'series {ref.series_uid}'):
        raise DicomServerError(
            f'the server no longer holds series {ref.series_uid} (study '
            f'{ref.study_uid}): its SR and SEG are not stored (they would '
            'make a study holding only them); its results stay in --out-dir')
