# Copyright (c) mmlesion contributors. All rights reserved.
"""Writing a generated dataset folder: all files appear together or not at
all, and a user folder is never overwritten without ``overwrite``."""
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Generic, List, Mapping, Optional, TypeVar, Union

from .settings import META_FILE


def check_output_dir(out: Path, overwrite: bool,
                     marker: str = META_FILE) -> None:
    """Refuse to clobber user data: raise FileExistsError unless ``out``
    is absent, empty, or (with ``overwrite``) holds the file ``marker``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f'{out} exists and is not a folder')
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f'{out} exists and is not empty; pass overwrite=True '
            '(--overwrite) to replace a previously generated demo dataset')
    if not (out / marker).is_file():
        raise FileExistsError(
            f'{out} is not empty and has no {marker}: it was not written '
            'by the demo generator, refusing to overwrite it (remove it '
            'yourself or choose another --out)')


def _replace_dir(tmp: Path, out: Path, overwrite: bool,
                 marker: str = META_FILE) -> None:
    if out.exists():
        check_output_dir(out, overwrite, marker)  # it may have changed
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f'.{out.name}.old-',
                                        dir=str(out.parent)))
            os.rmdir(old)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.rmdir(out)
    os.rename(tmp, out)


def write_dataset_dir(out_dir: Union[str, Path], write, overwrite: bool,
                      marker: str, num_steps: int = 0) -> Path:
    """Write a generated dataset atomically into ``out_dir``: ``write``
    fills a temporary sibling folder, which then replaces ``out_dir`` (a
    folder without ``marker`` is never replaced).

    Args:
        out_dir (str | Path): the dataset root.
        write (callable): ``write(tmp: Path, progress) -> None``
            (``progress``: a progress bar over ``num_steps``, or None).
        overwrite (bool): replace a previously generated dataset.
        marker (str): the file that marks a generated dataset.
        num_steps (int): progress-bar length; 0 shows no bar.

    Returns:
        Path: the absolute ``out_dir``.
    """
    out = Path(out_dir).expanduser().absolute()
    check_output_dir(out, overwrite, marker)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.tmp-',
                                dir=str(out.parent)))
    try:
        os.chmod(tmp, 0o755)
        progress = None
        if num_steps:
            from mmlesion.utils.reporting.progress import progress_bar
            progress = progress_bar(num_steps, label='generating')
        write(tmp, progress)
        if progress is not None:
            progress.finish()
        _replace_dir(tmp, out, overwrite, marker)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


#: The summary a :class:`DatasetGenerator` gives (a subclass's own
#: TypedDict, with an ``out_dir`` key once written).
Summary = TypeVar('Summary', bound=Mapping)


class DatasetGenerator(Generic[Summary]):
    """A demo generator: settings merged with keyword overrides, and the
    dataset written atomically by :meth:`generate`.

    Subclasses set ``CONFIG`` (the settings dataclass) and ``MARKER`` (the
    file marking a folder they wrote) and provide ``_draw_plan()``,
    ``summary()`` (a ``Summary``), ``_write(tmp, progress)`` and
    ``_num_steps()``.
    """
    CONFIG: type
    MARKER: str

    def __init__(self, config: Optional[object] = None, **kwargs) -> None:
        unknown = set(kwargs) - set(self.CONFIG.__dataclass_fields__)
        if unknown:
            raise TypeError(f'Unknown {self.CONFIG.__name__} fields: '
                            f'{unknown}')
        self.config = replace(self.CONFIG() if config is None else config,
                              **kwargs)
        self.config.validate()
        self._planned: Optional[list] = None

    def plan(self) -> list:
        """The drawn dataset (drawn once, no pixels yet)."""
        if self._planned is None:
            self._planned = self._draw_plan()
        return self._planned

    def generate(self, out_dir: Union[str, Path], overwrite: bool = False,
                 show_progress: bool = False) -> Summary:
        """Write the dataset into ``out_dir`` (:func:`write_dataset_dir`).

        Args:
            out_dir (str | Path): dataset root to create.
            overwrite (bool): replace a folder this generator wrote (it
                holds ``MARKER``). Defaults to False.
            show_progress (bool): show a progress bar. Defaults to False.

        Returns:
            Summary: :meth:`summary` plus ``out_dir``.

        Raises:
            FileExistsError: ``out_dir`` is a file, or a non-empty folder and
                ``overwrite`` is False, or not a generated dataset.
        """
        self.plan()
        out = write_dataset_dir(out_dir, self._write, overwrite, self.MARKER,
                                self._num_steps() if show_progress else 0)
        summary = self.summary()
        summary['out_dir'] = str(out)
        return summary

    @classmethod
    def write(cls, out_dir: Union[str, Path], seed: int = 0,
              overwrite: bool = False, show_progress: bool = False,
              **kwargs) -> Summary:
        """Write the dataset of ``seed`` and the other ``CONFIG`` fields
        ``kwargs`` into ``out_dir`` (:meth:`generate`); its summary."""
        return cls(seed=seed, **kwargs).generate(
            out_dir, overwrite=overwrite, show_progress=show_progress)


def round_all(values, digits: int) -> List[float]:
    """``values`` as floats rounded to ``digits`` (the JSON files')."""
    return [round(float(v), digits) for v in values]
