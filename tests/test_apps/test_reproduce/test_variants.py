# Copyright (c) mmlesion contributors. All rights reserved.
"""A row that differs from the paper's setting says so where its number is
printed: ``table.md``'s setting column and every ``--compare`` line; a
variant is set beside the paper's reading of its row where that is a row,
and its comparison is marked where it is not; the metafiles' ``Paper Row``
name the same variants (:data:`VARIANTS`, the one definition)."""
import glob
import json
import os
import os.path as osp

import yaml

from mmlesion.apps.reproduce import (TABLES, PlanContext, build_rows, compare,
                                     summarise, table_markdown)
from mmlesion.apps.reproduce.execute import repo_root
from mmlesion.apps.reproduce.paper_results import (MERGED_MODELS,
                                                   PAPER_RESULTS,
                                                   QUOTED_MODELS)
from mmlesion.apps.reproduce.variants import VARIANTS

TRPN = 'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice'
NOAUX = 'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice'
E9 = 'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice'
E9_READING = 'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice'


def _all_rows(tmp_path):
    ctx = PlanContext(str(tmp_path / 'w'), folds=[0])
    return {name: build_rows(name, ctx, None, [0]) for name in TABLES}


def _paper_rows():
    out = {}
    for path in glob.glob(osp.join(repo_root(), 'configs', '*',
                                   'metafile.yml')):
        with open(path) as f:
            for m in yaml.safe_load(f)['Models']:
                out[m['Name']] = m['Metadata']['Paper Row']
    return out


def test_variants_are_the_metafiles(tmp_path):
    """A table row's model is a variant exactly where its metafile's
    ``Paper Row`` says ``variant``; every variant is a table row."""
    paper_rows = _paper_rows()
    models = {r.model for rows in _all_rows(tmp_path).values()
              for r in rows if r.model not in {**QUOTED_MODELS,
                                               **MERGED_MODELS}}
    assert set(VARIANTS) <= models
    for model in models:
        assert ('variant' in paper_rows[model]) == (model in VARIANTS), (
            model, paper_rows[model])


def test_a_variant_is_never_alone_against_a_paper_number(tmp_path):
    """A variant whose paper's reading is a model of its own shares the
    table with that row and has no paper numbers of its own; the others
    carry the paper's numbers and their setting says they are variants."""
    for name, rows in _all_rows(tmp_path).items():
        by_model = {r.model: r for r in rows}
        for row in rows:
            variant = VARIANTS.get(row.model)
            if variant is None or variant.paper_reading is None:
                continue
            assert variant.paper_reading in by_model, (name, row.key)
            assert row.model not in PAPER_RESULTS
            assert row.paper_name == variant.paper_reading
            assert by_model[variant.paper_reading].model not in VARIANTS \
                or VARIANTS[variant.paper_reading].paper_reading is None


def _measured(tmp_path, table, keys, metrics):
    """The table's summary, key -> entry, each row having measured
    ``metrics`` (seed 0)."""
    rows = build_rows(table, PlanContext(str(tmp_path / 'w')), keys, [0])
    for row in rows:
        os.makedirs(osp.dirname(row.metrics_file), exist_ok=True)
        with open(row.metrics_file, 'w') as f:
            json.dump(metrics, f)
    return {e['key']: e
            for e in summarise(TABLES[table], rows, PAPER_RESULTS)}


def test_table_md_and_compare_name_the_setting(tmp_path):
    """``elixirnet/table5``: the paper's + TRPN (Eq. (1) alone) and the
    variant with the auxiliary loss beside it, both against 83.61; the
    9-slice row with the RTM beside our reading of the paper's 9-slice row
    (+ TRPN + ALB), both marked as readings; full ElixirNet against 86.63,
    marked as a variant."""
    spec = TABLES['elixirnet/table5']
    keys = ['fpn', 'trpn', 'trpn_noaux', 'trpn_alb_9slice',
            'elixirnet_9slice', 'elixirnet']
    summary = _measured(tmp_path, 'elixirnet/table5', keys,
                        {'froc/sens@3': 0.5, 'froc/bbox_mAP': 0.2})
    assert summary['fpn']['setting'] == 'paper'
    assert summary['trpn_noaux']['setting'] == 'paper'
    assert summary['trpn']['paper'] == summary['trpn_noaux']['paper'] == {
        'sens@3': 83.61, 'bbox_mAP': 33.9}
    assert summary['trpn']['setting'].startswith('variant: ')
    assert "the paper's reading: row trpn_noaux" in \
        summary['trpn']['setting']
    # the 9-slice row is our reading of a row whose check marks are lost:
    # it says so, and the RTM variant says it is set beside a reading
    assert summary['elixirnet_9slice']['paper']['sens@3'] == 85.43
    assert "our reading of the paper's row: Table 5's 9-slice row" in \
        summary['trpn_alb_9slice']['setting']
    assert "set beside row trpn_alb_9slice, our reading of the paper's " \
        'row, not a setting the paper states' in \
        summary['elixirnet_9slice']['setting']
    assert "the paper's reading" not in summary['elixirnet_9slice']['setting']
    assert 'as a variant' in summary['elixirnet']['setting']
    md = table_markdown(spec, list(summary.values()))
    assert '| row | setting |' in md
    noaux = next(ln for ln in md.splitlines()
                 if ln.startswith("| + TRPN (the paper's Eq. 1 alone) |"))
    assert noaux.split(' | ')[1] == 'paper' and '| 83.61 / 50.00 |' in noaux
    trpn = next(ln for ln in md.splitlines() if 'variant, auxiliary' in ln
                or ln.startswith('| + TRPN (auxiliary'))
    assert 'variant: ' in trpn and '| 83.61 / 50.00 |' in trpn
    # every row falls short on both columns: one line per row and column
    lines = compare(summary.values())
    assert len(lines) == 2 * len(keys)
    for e in summary.values():
        mine = [ln for ln in lines if ln.startswith(f"{e['label']} (")]
        assert len(mine) == 2
        marked = e['key'] not in ('fpn', 'trpn_noaux')
        assert all(('[variant: ' in ln) == marked for ln in mine), mine


def test_the_mulan_baseline_is_marked_a_variant(tmp_path):
    """LENS Table I's baseline is MULAN's detector only, not the full MULAN
    behind the paper's 33.9: ``table.md`` and ``--compare`` say so."""
    spec = TABLES['lens/table1']
    summary = _measured(tmp_path, 'lens/table1', ['baseline', 'a'],
                        {'average': 0.2, 'sens@1': 0.1})
    assert summary['a']['setting'] == 'paper'
    base = summary['baseline']
    assert base['paper']['froc3d/mean@0.125-8'] == 33.9
    assert base['setting'].startswith("variant: MULAN's detector only")
    assert 'full MULAN' in base['setting'] and 'as a variant' in \
        base['setting']
    md = table_markdown(spec, list(summary.values()))
    line = next(ln for ln in md.splitlines()
                if ln.startswith('| MULAN (baseline) |'))
    assert "| variant: MULAN's detector only" in line
    assert '33.9 / 20.00' in line
    lines = [ln for ln in compare(summary.values())
             if ln.startswith('MULAN (baseline) (')]
    assert lines and all("[variant: MULAN's detector only" in ln
                         for ln in lines)
