# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan inference of many scans, on top of the one-scan API
(:mod:`mmlesion.apis.whole_scan`), used by ``tools/infer_volume.py``'s
list, shard and server modes. The modules follow a run's path, in this
order; a module imports only the modules before it and the one-scan API:

==================== =====================================================
``scan_list``        a day's scans: the list file, each scan's results folder
``batch``            a day's scans through one model
``shard_summary``    a sharded batch's merged tables, picture and page
``shards``           work items (scan files) sharded over several jobs
                     (local or Slurm)
``server_source``    a DICOM server's query, checks and retrieval as
                     files, over a protocol's transport
``dicomweb_source``  the DICOMweb transport (QIDO-RS, WADO-RS, STOW-RS)
``dimse_source``     the DIMSE transport (C-FIND, C-GET, C-STORE)
``store_back``       a scan's SR and SEG stored into its study, never twice
``dicomweb_batch``   a server query's series through one model, results
                     stored back (DICOMweb or DIMSE)
``server_shards``    a server query's series sharded over several jobs
==================== =====================================================
"""
