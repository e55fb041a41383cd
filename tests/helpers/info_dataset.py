# Copyright (c) mmlesion contributors. All rights reserved.
"""A stand-in dataset of given data infos, for tests."""
from typing import Callable, List, Optional


class InfoDataset:
    """``len`` / ``get_data_info`` (and, if given, ``pipeline``) of a
    dataset holding ``infos``; nothing is read.

    Args:
        infos (list[dict]): the data infos.
        pipeline (callable, optional): what ``pipeline(item)`` returns.
    """

    def __init__(self, infos: List[dict],
                 pipeline: Optional[Callable] = None) -> None:
        self.infos = infos
        if pipeline is not None:
            self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.infos)

    def get_data_info(self, i: int) -> dict:
        return self.infos[i]
