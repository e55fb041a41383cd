# Copyright (c) mmlesion contributors. All rights reserved.
"""numpy's huge-page advice switched for a block
(mmlesion.utils.huge_pages)."""
import pytest

from mmlesion.utils.huge_pages import (numpy_huge_pages,
                                       numpy_huge_pages_enabled)

pytestmark = pytest.mark.skipif(numpy_huge_pages_enabled() is None,
                                reason="this numpy has no huge-page switch")


@pytest.mark.parametrize('before', [True, False])
@pytest.mark.parametrize('inside', [True, False])
def test_the_block_sees_its_setting_and_the_previous_one_comes_back(
        before, inside):
    with numpy_huge_pages(before):
        assert numpy_huge_pages_enabled() is before
        with numpy_huge_pages(inside):
            assert numpy_huge_pages_enabled() is inside
        assert numpy_huge_pages_enabled() is before


def test_none_leaves_numpy_as_it_is():
    for state in (True, False):
        with numpy_huge_pages(state), numpy_huge_pages(None):
            assert numpy_huge_pages_enabled() is state


def test_an_error_in_the_block_restores_the_setting():
    with numpy_huge_pages(True):
        with pytest.raises(RuntimeError, match='inside'):
            with numpy_huge_pages(False):
                raise RuntimeError('inside')
        assert numpy_huge_pages_enabled() is True
