# Copyright (c) mmlesion contributors. All rights reserved.
"""A real DICOMweb server for tests: Orthanc with its DICOMweb plugin
(Debian: ``apt-get install orthanc orthanc-dicomweb``), started on a free
port, answering 127.0.0.1 only (``RemoteAccessAllowed`` false), with its
storage in a temporary folder and one user (:data:`USER`,
:data:`PASSWORD`); its DICOM port (DIMSE) on another free port, with the
AE title :data:`AET`, checking the called AE title, and answering C-FIND,
C-GET and C-STORE from the modalities it lists (:data:`CALLING_AET`, and
:data:`NO_GET_AET`, which may query and store but not retrieve).

:func:`orthanc_missing` says why it cannot run here (the tests skip with
that reason); :class:`OrthancServer` starts and stops one.
"""
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

ORTHANC = '/usr/sbin/Orthanc'
#: Where Debian's orthanc-dicomweb puts the plugin (``dpkg -L``).
PLUGIN_DIRS = ('/usr/share/orthanc/plugins', '/usr/lib/orthanc')
USER, PASSWORD = 'mmlesion', 'test-secret'
#: The server's AE title; the calling AE titles it lists (the second one
#: may not C-GET).
AET, CALLING_AET, NO_GET_AET = 'ORTHANC', 'MMLTEST', 'MMLNOGET'


def _plugin() -> Optional[str]:
    for folder in PLUGIN_DIRS:
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.startswith('libOrthancDicomWeb.so'):
                    return os.path.join(folder, name)
    return None


def orthanc_missing() -> Optional[str]:
    """Why no Orthanc with DICOMweb can start here, or None."""
    binary = shutil.which('Orthanc') or (ORTHANC if os.path.exists(ORTHANC)
                                         else None)
    if binary is None:
        return ('Orthanc is not installed (Debian: apt-get install orthanc '
                'orthanc-dicomweb)')
    if _plugin() is None:
        return ('the Orthanc DICOMweb plugin is not installed (Debian: '
                'apt-get install orthanc-dicomweb)')
    try:
        import dicomweb_client  # noqa: F401
    except ImportError:
        return 'dicomweb-client is not installed (requirements/runtime.txt)'
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class OrthancServer:
    """One Orthanc process with its DICOMweb plugin.

    Args:
        folder (Path): its storage, config and log (created).

    Attributes:
        url (str): the server's root, ``http://127.0.0.1:PORT``.
        dicomweb (str): its DICOMweb root (``url + '/dicom-web'``).
        dimse (str): its DICOM port, ``127.0.0.1:PORT``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.port = _free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.dicomweb = self.url + '/dicom-web'
        dicom_port = _free_port()
        while dicom_port == self.port:
            dicom_port = _free_port()
        self.dimse = f'127.0.0.1:{dicom_port}'
        self._process: Optional[subprocess.Popen] = None

    def __enter__(self) -> 'OrthancServer':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 30.) -> None:
        """Start it and wait until it answers."""
        import requests
        storage = self.folder / 'storage'
        storage.mkdir(parents=True, exist_ok=True)
        config = dict(
            Name='mmlesion-test', StorageDirectory=str(storage),
            IndexDirectory=str(storage), HttpPort=self.port,
            DicomServerEnabled=True, DicomAet=AET,
            DicomPort=int(self.dimse.rpartition(':')[2]),
            DicomCheckCalledAet=True, DicomAlwaysAllowFind=False,
            DicomAlwaysAllowGet=False, DicomModalities={
                'mmlesion': dict(AET=CALLING_AET, Host='127.0.0.1',
                                 Port=104),
                'noget': dict(AET=NO_GET_AET, Host='127.0.0.1', Port=104,
                              AllowGet=False)},
            RemoteAccessAllowed=False,
            AuthenticationEnabled=True, RegisteredUsers={USER: PASSWORD},
            HttpThreadsCount=4, Plugins=[_plugin()],
            DicomWeb=dict(Enable=True, Root='/dicom-web/'))
        path = self.folder / 'orthanc.json'
        path.write_text(json.dumps(config, indent=2))
        log = open(self.folder / 'orthanc.log', 'wb')
        binary = shutil.which('Orthanc') or ORTHANC
        self._process = subprocess.Popen([binary, str(path)], stdout=log,
                                         stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f'Orthanc ended with {self._process.returncode}: ' +
                    (self.folder / 'orthanc.log').read_text()[-2000:])
            try:
                # Both ports: under load the DICOM port can open after the
                # HTTP one (a DIMSE test then saw 'cannot connect').
                if requests.get(self.url + '/system', auth=(USER, PASSWORD),
                                timeout=1).ok and self._dicom_port_open():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(.05)
        self.stop()
        raise RuntimeError(f'Orthanc did not answer within {timeout} s')

    def _dicom_port_open(self) -> bool:
        host, _, port = self.dimse.rpartition(':')
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it (killed: its storage is a test's temporary folder)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def get(self, path: str):
        """GET a REST path (e.g. ``/instances``) as JSON."""
        import requests
        reply = requests.get(self.url + path, auth=(USER, PASSWORD),
                             timeout=10)
        reply.raise_for_status()
        return reply.json()

    def delete_series(self, series_uid: str) -> None:
        """Delete a series (its study too, once empty), as a user of the
        archive would (Orthanc's ``DELETE /series/{id}``)."""
        import requests
        for sid in self.get('/series'):
            if self.get(f'/series/{sid}')['MainDicomTags'][
                    'SeriesInstanceUID'] == series_uid:
                requests.delete(f'{self.url}/series/{sid}',
                                auth=(USER, PASSWORD),
                                timeout=10).raise_for_status()

    def upload(self, files: List[Path]) -> None:
        """Store DICOM files (Orthanc's ``POST /instances``)."""
        import requests
        with requests.Session() as session:
            session.auth = (USER, PASSWORD)
            for path in files:
                reply = session.post(self.url + '/instances',
                                     data=Path(path).read_bytes(),
                                     timeout=10)
                reply.raise_for_status()


def write_ct_series(folder: Path, array_hu, spacing_xyz, origin_xyz,
                    uids: dict, tags: dict) -> List[Path]:
    """Write an int16 HU array (z, y, x) as a DICOM series, one file a
    slice (Explicit VR Little Endian).

    Args:
        folder (Path): where (created).
        array_hu (np.ndarray): the slices.
        spacing_xyz, origin_xyz: the geometry (axial, LPS).
        uids (dict): ``study``, ``series`` (instance UIDs are made from
            the series UID).
        tags (dict): data set attributes set on every slice (e.g.
            ``PatientID``, ``StudyDate``, ``Modality``, ``ImageType``,
            ``SOPClassUID``).

    Returns:
        list[Path]: the files.
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array = np.asarray(array_hu, np.int16)
    paths = []
    for k, plane in enumerate(array):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = f"{uids['series']}.{k + 1}"
        ds.StudyInstanceUID = uids['study']
        ds.SeriesInstanceUID = uids['series']
        ds.FrameOfReferenceUID = f"{uids['series']}.0"
        ds.Modality = 'CT'
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = '1', 1, k + 1
        # the type 2 attributes of the patient, study and equipment
        ds.PatientName, ds.PatientID = '', ''
        ds.PatientBirthDate, ds.PatientSex = '', ''
        ds.StudyDate, ds.StudyTime = '', ''
        ds.AccessionNumber, ds.ReferringPhysicianName = '', ''
        ds.Manufacturer = ''
        ds.ImagePositionPatient = [float(origin_xyz[0]),
                                   float(origin_xyz[1]),
                                   float(origin_xyz[2] + k * spacing_xyz[2])]
        ds.ImageOrientationPatient = [1., 0., 0., 0., 1., 0.]
        ds.PixelSpacing = [float(spacing_xyz[1]), float(spacing_xyz[0])]
        ds.SliceThickness = float(spacing_xyz[2])
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept, ds.RescaleSlope = 0., 1.
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.PixelData = np.ascontiguousarray(plane).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f'{k + 1:03d}.dcm'
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    return paths
