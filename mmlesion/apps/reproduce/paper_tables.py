# Copyright (c) mmlesion contributors. All rights reserved.
"""What a paper method tells the paper harness (``tools/reproduce.py``): its
:class:`PaperTables`, registered in :data:`PAPER_TABLES` from the module
its home names in ``PAPER_TABLES_MODULE`` (``mmlesion/methods/<name>/
tables.py``, imported when the harness looks a method up) or from any module mmengine's
``custom_imports`` (``tools/reproduce.py --custom-imports``) imports.
Inference and training never import this module.
"""
from dataclasses import dataclass, field
from typing import (Any, Callable, List, Mapping, NamedTuple, Optional,
                    Sequence, Tuple)

from mmlesion.utils.method_registry import (MethodPart, MethodRegistry,
                                            MethodView)


@dataclass
class TableSpec:
    """A reproducible paper table.

    Args:
        name (str): ``<method>/<table>``.
        title (str): what the paper's table shows.
        row_keys (list[str]): its rows, in the paper's order.
        build (callable): ``build(ctx, key, seed) ->``
            :class:`~.plan.Row`.
        columns (list[str]): the paper keys the table prints.
        folds (bool): whether the rows are LUNA16 10-fold rows.
        picture_rates (list[float]): FP rates of the FROC picture (the
            ``sens@r`` columns), empty for none.
    """
    name: str
    title: str
    row_keys: List[str]
    build: Callable[['PlanContext', str, int], 'Row']
    columns: List[str]
    folds: bool = False
    picture_rates: Sequence[float] = ()


class Printed(NamedTuple):
    """A number a paper prints (or one derived from printed ones), and
    where it stands.

    Args:
        value (float): the number.
        where (str): its table or section (``'Table III'``,
            ``'Sec. IV-F'``), as a document cites it.
        row (str): the row, model or setting it belongs to.
        column (str): its column or quantity.
        names (tuple[str]): how a document names that row (or column)
            beside the number; a document that quotes the number beside
            another entry's name instead fails
            ``tests/test_docs/test_paper_quotes.py``. Empty: not checked.
        unit (str): what a document writes after it (``'s'``, ``'%'``,
            ``'K'``, ``'points'``; empty: a bare number).
        printed (bool): False for a number derived from printed ones (a
            ratio of two times), which a document must call derived.
    """
    value: float
    where: str
    row: str
    column: str
    names: Tuple[str, ...] = ()
    unit: str = ''
    printed: bool = True


class ResultRow(NamedTuple):
    """Where a model's numbers of :data:`.paper_results.PAPER_RESULTS`
    stand in its paper: one table (or section, or figure) and row.

    Args:
        where (str): the table, figure or section (``'Table 5'``,
            ``'Fig. 4c'``, ``'the text on Table 5'``), as a document cites it.
        row (str): the row as the paper prints it.
        names (tuple[str]): how a document names that row beside one of its
            numbers (:class:`Printed`'s ``names``).
        keys (tuple[str]): the metric keys of the model that stand there
            (empty: all of them).
        printed (bool): False where the paper prints the row's numbers only
            as another row's minus a gain (a document must call them
            derived).
    """
    where: str
    row: str
    names: Tuple[str, ...]
    keys: Tuple[str, ...] = ()
    printed: bool = True


class Gain(NamedTuple):
    """A difference of two paper numbers that documents quote as a gain
    (derived from the table's rows; :class:`Printed`'s ``names``).

    Args:
        model (str): the model of :data:`.paper_results.PAPER_RESULTS`.
        minus (str): the model it is compared with.
        key (str): the metric key.
        where (str): the table of the two rows.
        names (tuple[str]): how a document names the step.
    """
    model: str
    minus: str
    key: str
    where: str
    names: Tuple[str, ...]


class Variant(NamedTuple):
    """A model that differs from the paper's setting of its row.

    Args:
        what (str): what differs, in a few words.
        paper_reading (str, optional): the model that is the paper's
            reading of the row, a row of the same table; its paper numbers
            are the row's. None: no model is, the variant carries the
            paper's numbers and its comparison is marked.
    """
    what: str
    paper_reading: Optional[str] = None


@dataclass(frozen=True)
class PaperTables(MethodPart):
    """One paper method's workflow, as the paper harness uses it.

    Args:
        name (str): its folder under ``configs/`` and the prefix of its
            tables (``<name>/table1``).
        tables (Mapping[str, TableSpec]): table name -> the
            :class:`TableSpec` that plans it
            (:func:`~.table_index.table_specs`).
        paper_results (Mapping[str, Mapping[str, float]]): model (config
            stem, quoted or merged name) -> metric key -> the paper's number.
        config_prefixes (tuple[str]): the first word of its config stems
            (``'faster'`` of ``faster-rcnn_r50_...``): which method a
            model is.
        quoted_models (tuple[str]): rows of other papers its tables quote.
        merged_models (tuple[str]): models without a config of their own.
        variants (Mapping[str, Variant]): model -> how it differs on
            purpose from the paper's row (:mod:`.variants`).
        read_rows (Mapping[str, str]): model -> the row it is our reading of.
        printed (Mapping[str, Printed]): other numbers its documents quote.
        gains (Mapping[str, Gain]): differences of two paper numbers its
            documents quote.
        result_columns (Mapping[str, tuple]): metric key -> (table, column,
            names, unit) of the paper numbers its documents quote in prose.
        result_rows (Mapping[str, tuple[ResultRow]]): model of
            ``paper_results`` -> the places of its numbers in the paper
            (:class:`ResultRow`: table, row, the names
            documents give it).
        step_times (Mapping[str, float]): step-time family (a word of its
            config file names) -> seconds per training item on one H100.
        family_configs (Mapping[str, str]): family -> the config timed for
            a stage named by the family alone.
        training_items (Mapping[str, Callable]): dataset name -> data root
            (or None) -> training items per epoch.
        training_inputs (Mapping[str, Callable]): detector ``type`` ->
            (config, batch size) -> its :class:`~.timing.TrainingInput`.
        synthetic_batches (Mapping[str, Callable]): training-input kind ->
            (training input, step) -> a synthetic ``train_step`` batch.
        data_root (str): the default data root of its tables.
        data_folders (Callable, optional): (table, plan context) -> every
            data folder the table reads (None: its data root).

    Raises:
        TypeError: (when made) a field of the wrong type, naming the method
            and the field.
    """
    tables: Mapping[str, TableSpec] = field(default_factory=dict)
    paper_results: Mapping[str, Mapping[str, float]] = field(
        default_factory=dict)
    config_prefixes: Tuple[str, ...] = ()
    quoted_models: Tuple[str, ...] = ()
    merged_models: Tuple[str, ...] = ()
    variants: Mapping[str, Variant] = field(default_factory=dict)
    read_rows: Mapping[str, str] = field(default_factory=dict)
    printed: Mapping[str, Printed] = field(default_factory=dict)
    gains: Mapping[str, Gain] = field(default_factory=dict)
    result_columns: Mapping[str, tuple] = field(default_factory=dict)
    result_rows: Mapping[str, Tuple[ResultRow, ...]] = field(
        default_factory=dict)
    step_times: Mapping[str, float] = field(default_factory=dict)
    family_configs: Mapping[str, str] = field(default_factory=dict)
    training_items: Mapping[str, Callable[[Optional[str]], int]] = field(
        default_factory=dict)
    training_inputs: Mapping[str, Callable[..., Any]] = field(
        default_factory=dict)
    synthetic_batches: Mapping[str, Callable[..., Any]] = field(
        default_factory=dict)
    data_root: str = 'data/DeepLesion'
    data_folders: Optional[Callable[[str, Any], List[str]]] = None


#: method name -> its :class:`PaperTables`
PAPER_TABLES = MethodRegistry('paper tables', PaperTables,
                              locator='PAPER_TABLES_MODULE')


def paper_view(attr: str) -> MethodView:
    """The union of one field of every registered :class:`PaperTables`."""
    return MethodView(PAPER_TABLES, attr)
