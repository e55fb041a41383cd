# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables :mod:`mmlesion.reproduce.tables` plans: the title of
each and its rows, in the paper's order (the stages of each row are in
``tables.py``).

The index is data, ``table_index.json`` beside this file, so that
``tools/reproduce.py --help`` lists the tables by reading that file
without importing mmlesion (:func:`mmlesion_cli.package_json`).
"""
import json
import os.path as osp
from typing import Dict, List, NamedTuple


class TableIndex(NamedTuple):
    title: str
    rows: List[str]


with open(osp.join(osp.dirname(__file__), 'table_index.json')) as _f:
    TABLE_INDEX: Dict[str, TableIndex] = {
        name: TableIndex(**table) for name, table in json.load(_f).items()}
