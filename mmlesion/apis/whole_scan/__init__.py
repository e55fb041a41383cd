# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan inference: a 2.5D detector over every slice of a CT scan, its
boxes stacked into 3D findings, measured and written.

The modules follow a scan's path, in this order; a module imports only the
modules before it, and no module of a method (a method's steps are objects
the caller hands in; ``tests/test_apis/whole_scan/test_stage_order.py``):

==================== =====================================================
``settings``         the detector's input convention, read from its config;
                     the detection, run and batch options; a method's steps
                     as its caller hands them in (``ModelAdjustment``,
                     ``FindingRescorer``)
``method_steps``     the registry of what methods add to a run
                     (``WHOLE_SCAN_STEPS``: their options, typed settings
                     and steps)
``results``          a scan's result and its findings; findings.json's schema
``model``            the detector's data convention, provenance, demo warning,
                     operating point
``backend``          the detector's convolutions exported once and run in
                     ONNX Runtime, the rest in torch
``read``             load a scan, refuse one too large to resample
``resample``         to the detector's slice interval and pixel spacing
``slices``           each slice's input through the test pipeline, in batches
``detect``           the detector over all slices: 2D boxes (and lesion maps)
``stack``            2D boxes -> 3D findings (re-scored) in scan voxels and
                     world mm; types
``measure``          RECIST long and short axis of each finding
``infer``            resample -> detect -> stack -> measure on one loaded scan
``dicom_sources``    the DICOM instances the results reference, one a slice
``write_dicom``      the findings as a DICOM SR and SEG
``write``            findings.json, candidates.csv, pictures, report, as a set
``run``              one scan from files to files
``calibrate``        scans with known lesions judged in 3D; the per-scan
                     operating point and lesion steps chosen on them
==================== =====================================================

A day's scans, shards and DICOM servers are applications on top of these
(:mod:`mmlesion.apps.whole_scan`).
"""
from .detect import detect_slices
from .infer import ScanSteps, infer_volume
from .resample import prepare_volume
from .results import (FINDINGS_SCHEMA_VERSION, Box2D, DicomStatus, Finding,
                      OperatingPoint, OutputPaths, RecistMeasurement,
                      RunProvenance, ScanGeometry, ScanResult)
from .run import run_volume_inference
from .settings import (DetectionSettings, FindingRescorer, ModelAdjustment,
                       RunSettings, VolumeInferenceSettings,
                       volume_settings_from_config)
from .write import format_summary, write_volume_results

__all__ = [
    'Box2D', 'DetectionSettings', 'DicomStatus',
    'FINDINGS_SCHEMA_VERSION', 'Finding', 'FindingRescorer',
    'ModelAdjustment', 'OperatingPoint', 'OutputPaths', 'RecistMeasurement',
    'RunProvenance', 'RunSettings', 'ScanGeometry', 'ScanResult', 'ScanSteps',
    'VolumeInferenceSettings', 'detect_slices', 'format_summary',
    'infer_volume', 'prepare_volume',
    'run_volume_inference',
    'volume_settings_from_config', 'write_volume_results'
]
