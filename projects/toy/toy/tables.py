# Copyright (c) mmlesion contributors. All rights reserved.
"""The toy method's table for ``tools/reproduce.py`` (imported through
``--custom-imports projects.toy.toy.tables``): one row, the toy config
trained and tested as ``projects/toy/README.md`` says, compared with the
numbers that README publishes."""
from mmlesion.apps.reproduce.execute import FROC_RATES, froc_map
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES, PaperTables
from mmlesion.apps.reproduce.row_stages import Training, train_test_row
from mmlesion.apps.reproduce.table_index import table_specs

STEM = 'toy_r18_fpn_12e_deeplesion-demo'
CONFIG = f'projects/toy/configs/{STEM}.py'
#: each table's title and rows, in the order of the README's table
TABLE_INDEX = {
    'toy/table1': {
        'title': ('Toy Table 1: the demo Faster R-CNN keeping 20 boxes a '
                  'slice, demo DeepLesion test split'),
        'rows': ['capped'],
    },
}


def _table1(ctx, key, seed):
    return train_test_row(ctx, key, 'Faster R-CNN, 20 boxes a slice',
                          Training(CONFIG, seed))


PAPER_TABLES.register(PaperTables(
    name='toy',
    tables=table_specs(__file__, {
        'toy/table1': (_table1, froc_map(), FROC_RATES, False)
    }, TABLE_INDEX),
    # the README's results table (its command, seed 0)
    paper_results={STEM: {'sens@4': 50.0}},
    config_prefixes=('toy', ),
    # not measured for the toy: the Faster R-CNN R50-FPN step on one H100
    # (50.9 ms per 3 x 512 x 512 image, projects/benchmarks/
    # benchmark_elixirnet.py --device cuda), an upper bound for its R18
    step_times={'toy': 0.0509},
    data_root='data/demo_deeplesion'))
