# Copyright (c) mmlesion contributors. All rights reserved.
"""What a paper method tells the shared engines: its :class:`MethodSpec`,
registered in :data:`mmlesion.registry.METHODS` and read through
:func:`registered_methods` or a :class:`MethodView`, so that no engine
names a method (docs/adding_a_method.md).
"""
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, FrozenSet, Iterator, List, Mapping,
                    Optional, Tuple)


@dataclass(frozen=True)
class MethodSpec:
    """One paper method's workflow, as the shared engines use it.

    Args:
        name (str): its folder under ``configs/`` and the prefix of its
            tables (``<name>/table1``).
        tables (Mapping[str, TableSpec]): table name -> the
            :class:`~mmlesion.apps.reproduce.plan.TableSpec` that plans it.
        paper_results (Mapping[str, Mapping[str, float]]): model (config
            stem, quoted or merged name) -> metric key -> the paper's number.
        config_prefixes (tuple[str]): the first word of its config stems
            (``'faster'`` of ``faster-rcnn_r50_...``): which method a
            model is.
        quoted_models (tuple[str]): rows of other papers its tables quote.
        merged_models (tuple[str]): models without a config of their own.
        variants (Mapping[str, Variant]): model -> how it differs on
            purpose from the paper's row
            (:mod:`mmlesion.apps.reproduce.variants`).
        read_rows (Mapping[str, str]): model -> the row it is our reading of.
        printed (Mapping[str, Printed]): other numbers its documents quote.
        gains (Mapping[str, Gain]): differences of two paper numbers its
            documents quote.
        result_columns (Mapping[str, tuple]): metric key -> (table, column,
            names, unit) of the paper numbers its documents quote in prose.
        result_rows (Mapping[str, tuple]): model of ``paper_results`` ->
            the places of its numbers in the paper
            (:class:`~mmlesion.apps.reproduce.paper_text.ResultRow`: table,
            row, the names documents give it).
        step_times (Mapping[str, float]): step-time family (a word of its
            config file names) -> seconds per training item on one H100.
        family_configs (Mapping[str, str]): family -> the config timed for
            a stage named by the family alone.
        training_items (Mapping[str, Callable]): dataset name -> data root
            (or None) -> training items per epoch.
        training_inputs (Mapping[str, Callable]): detector ``type`` ->
            (config, batch size) -> its
            :class:`~mmlesion.apps.reproduce.timing.TrainingInput`.
        synthetic_batches (Mapping[str, Callable]): training-input kind ->
            (training input, step) -> a synthetic ``train_step`` batch.
        config_keys (Mapping[str, Mapping[str, FrozenSet[str]]]): detector
            ``type`` -> section -> the keys read there (the whole-config
            check, :mod:`mmlesion.utils.configs.whole_config`).
        data_root (str): the default data root of its tables.
        data_folders (Callable, optional): (table, plan context) -> every
            data folder the table reads (None: its data root).
        whole_scan_steps (Callable, optional): a whole-scan run's options
            (``tools/infer_volume.py``'s) -> the model adjustments and the
            finding re-scorer (or None) they ask of this method
            (:class:`~mmlesion.apis.whole_scan.settings.ModelAdjustment`,
            ``FindingRescorer``).
    """
    name: str
    tables: Mapping[str, Any] = field(default_factory=dict)
    paper_results: Mapping[str, Mapping[str, float]] = field(
        default_factory=dict)
    config_prefixes: Tuple[str, ...] = ()
    quoted_models: Tuple[str, ...] = ()
    merged_models: Tuple[str, ...] = ()
    variants: Mapping[str, Any] = field(default_factory=dict)
    read_rows: Mapping[str, str] = field(default_factory=dict)
    printed: Mapping[str, Any] = field(default_factory=dict)
    gains: Mapping[str, Any] = field(default_factory=dict)
    result_columns: Mapping[str, tuple] = field(default_factory=dict)
    result_rows: Mapping[str, tuple] = field(default_factory=dict)
    step_times: Mapping[str, float] = field(default_factory=dict)
    family_configs: Mapping[str, str] = field(default_factory=dict)
    training_items: Mapping[str, Callable[[Optional[str]], int]] = field(
        default_factory=dict)
    training_inputs: Mapping[str, Callable[..., Any]] = field(
        default_factory=dict)
    synthetic_batches: Mapping[str, Callable[..., Any]] = field(
        default_factory=dict)
    config_keys: Mapping[str, Mapping[str, FrozenSet[str]]] = field(
        default_factory=dict)
    data_root: str = 'data/DeepLesion'
    data_folders: Optional[Callable[[str, Any], List[str]]] = None
    whole_scan_steps: Optional[Callable[[Any], Tuple[Tuple[Any, ...],
                                                     Any]]] = None


_BUILT: Dict[Callable[[], MethodSpec], MethodSpec] = {}


def registered_methods() -> Dict[str, MethodSpec]:
    """Every registered method's spec, by name (the registry imports
    ``mmlesion.methods`` on the first call).

    Raises:
        TypeError: a registered function that returns no
            :class:`MethodSpec`, named.
    """
    from mmlesion.registry import METHODS
    METHODS.import_from_location()
    out = {}
    for name, make in sorted(METHODS.module_dict.items()):
        if make not in _BUILT:
            spec = make()
            if not isinstance(spec, MethodSpec) or spec.name != name:
                raise TypeError(f'METHODS[{name!r}] ({make.__module__}) '
                                f'must return a MethodSpec named {name!r}')
            _BUILT[make] = spec
        out[name] = _BUILT[make]
    return out


def method_spec(name: str) -> MethodSpec:
    """One registered method's spec.

    Raises:
        KeyError: an unknown method, naming the known ones.
    """
    methods = registered_methods()
    if name not in methods:
        raise KeyError(f'unknown method {name!r}; registered: '
                       f'{sorted(methods)}')
    return methods[name]


def whole_scan_steps(options: Any) -> Tuple[Tuple[Any, ...], Any]:
    """The model adjustments and the finding re-scorer (or None) that a
    whole-scan run's options ask of the registered methods.

    Raises:
        ValueError: two methods asked for a re-scorer, both named.
    """
    adjustments: List[Any] = []
    rescorers = []
    for name, spec in registered_methods().items():
        if spec.whole_scan_steps is not None:
            adjust, rescorer = spec.whole_scan_steps(options)
            adjustments += adjust
            if rescorer is not None:
                rescorers.append((name, rescorer))
    if len(rescorers) > 1:
        raise ValueError('one re-scorer per run: the options ask for those '
                         f'of {[n for n, _ in rescorers]}')
    return tuple(adjustments), rescorers[0][1] if rescorers else None


class MethodView(Mapping):
    """The union of one field of every registered spec (plus ``base``),
    merged on use (a tuple of names maps each to its method's).

    Args:
        attr (str): the :class:`MethodSpec` field (a mapping or a tuple).
        base (Mapping, optional): entries of no method (the engine's own).

    Raises:
        ValueError: (on use) two methods, or a method and ``base``, giving
            the same key.
    """

    def __init__(self, attr: str, base: Optional[Mapping] = None) -> None:
        self.attr = attr
        self.base = dict(base or {})
        self._key: Tuple = ()
        self._merged: Dict[Any, Any] = {}

    def _data(self) -> Dict[Any, Any]:
        methods = registered_methods()
        key = tuple(id(s) for s in methods.values())
        if key != self._key:
            merged, owner = dict(self.base), dict.fromkeys(self.base, 'base')
            for name, spec in methods.items():
                value = getattr(spec, self.attr)
                items = (value.items() if isinstance(value, Mapping) else
                         ((k, name) for k in value))
                for k, v in items:
                    if k in merged:
                        raise ValueError(
                            f'{self.attr} {k!r} is given by both '
                            f'{owner[k]!r} and {name!r}: rename one')
                    merged[k], owner[k] = v, name
            self._merged, self._key = merged, key
        return self._merged

    def __getitem__(self, key: Any) -> Any:
        return self._data()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return f'MethodView({self.attr!r}, {len(self)} entries)'
