# Copyright (c) mmlesion contributors. All rights reserved.
"""One runner for every comparison study: a study is a table of rows.

A row is a config plus overrides (and, if needed, a pre-step such as anchor
optimisation, or its own multi-stage run); the runner trains and tests every
row with the same settings for N seeds, reuses a row/seed whose result file
exists, and reports mean ± std of the chosen metric (the DeepLesion FROC by
default, the LUNA16 CPM or any other through :class:`StudyMetric`) as JSON,
a markdown table and one FROC picture with every row.

Example:
    >>> from projects.study_demo.study import (StudyRow, StudySettings,
    ...                                  deeplesion_froc, run_study,
    ...                                  write_study_report)
    >>> rows = [StudyRow('fpn', 'FPN', 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py')]
    >>> result = run_study(rows, StudySettings('work_dirs/s', seeds=(0, 1)),
    ...                    deeplesion_froc())  # doctest: +SKIP
    >>> write_study_report(result)  # doctest: +SKIP
"""
from .cli import add_study_arguments, settings_from_args
from .effects import StudyStep, effects_markdown, paired_effects, verdict
from .report import (format_text_table, markdown_table, study_summary,
                     write_study_report)
from .row_run import (TIME_KEY, apply_run_settings, final_checkpoint,
                      train_and_test)
from .rows import (RowContext, StudyMetric, StudyRow, StudySettings,
                   deeplesion_froc, luna16_cpm)
from .seed_jobs import maybe_run_seed_jobs, run_seed_jobs
from .test_set import (MIN_TEST_LESIONS, MIN_TEST_NODULES, StudyTestSet,
                       config_test_set)
from .runner import (RESULT_FILE, RowResult, StudyResult, build_row_config,
                     default_row_run, row_fingerprint, row_seed_dir,
                     run_study)

__all__ = [
    'StudyRow', 'StudySettings', 'StudyMetric', 'RowContext',
    'deeplesion_froc', 'luna16_cpm', 'run_study', 'build_row_config',
    'default_row_run', 'row_fingerprint', 'row_seed_dir', 'RowResult',
    'StudyResult', 'RESULT_FILE', 'format_text_table', 'markdown_table',
    'study_summary', 'write_study_report', 'apply_run_settings',
    'final_checkpoint', 'train_and_test', 'add_study_arguments',
    'settings_from_args', 'TIME_KEY', 'StudyStep', 'paired_effects',
    'effects_markdown', 'verdict', 'maybe_run_seed_jobs', 'run_seed_jobs',
    'StudyTestSet', 'MIN_TEST_LESIONS', 'MIN_TEST_NODULES', 'config_test_set'
]
