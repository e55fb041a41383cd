# Copyright (c) mmlesion contributors. All rights reserved.
"""A batch's scan list and the folders of its scans
(mmlesion.apps.whole_scan.scan_list)."""
import pytest

from mmlesion.apps.whole_scan.scan_list import (NamedScan, find_scans,
                                                named_scans, read_scan_list,
                                                scan_folder_name)


def test_scan_list_reads_paths_and_names_bad_lines(tmp_path):
    (tmp_path / 'a.nii.gz').write_bytes(b'x')
    (tmp_path / 'dcm').mkdir()
    listing = tmp_path / 'lists' / 'today.txt'
    listing.parent.mkdir()
    (tmp_path / 'lists' / 'b.mhd').write_bytes(b'x')
    listing.write_text(f'# morning\n{tmp_path / "a.nii.gz"}\n\n  b.mhd  \n'
                       f'{tmp_path / "dcm"}\n')
    assert read_scan_list(listing) == [
        str(tmp_path / 'a.nii.gz'), str(tmp_path / 'lists' / 'b.mhd'),
        str(tmp_path / 'dcm')]
    listing.write_text('b.mhd\n# next\nmissing.nii.gz\n')
    with pytest.raises(ValueError, match=r'today.txt, line 3: no such scan '
                       r"'missing.nii.gz'"):
        read_scan_list(listing)
    listing.write_text('# nothing yet\n\n')
    with pytest.raises(ValueError, match='no scan listed'):
        read_scan_list(listing)
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        read_scan_list(tmp_path / 'nope.txt')


def test_folder_names_strip_extensions_and_refuse_a_clash(tmp_path):
    (tmp_path / 'series_7').mkdir()
    assert scan_folder_name(tmp_path / 'ct_01.nii.gz') == 'ct_01'
    assert scan_folder_name(tmp_path / '1.3.6.1.4.mhd') == '1.3.6.1.4'
    assert scan_folder_name(str(tmp_path / 'series_7') + '/') == 'series_7'
    assert [s.folder for s in named_scans(['a/x.nii.gz', 'a/y.mhd'])
            ] == ['x', 'y']
    with pytest.raises(ValueError, match=r'a/x.nii.gz and b/x.mhd would both '
                       r"write their results to the folder 'x'"):
        named_scans(['a/x.nii.gz', 'b/x.mhd'])


def test_a_scan_list_saved_with_a_byte_order_mark(tmp_path):
    """A list saved by an editor that writes a UTF-8 byte-order mark (and
    CRLF line ends) reads as the same list."""
    (tmp_path / 'a.nii.gz').write_bytes(b'x')
    (tmp_path / 'b.mhd').write_bytes(b'x')
    listing = tmp_path / 'today.txt'
    listing.write_bytes('a.nii.gz\r\nb.mhd\r\n'.encode('utf-8-sig'))
    assert read_scan_list(listing) == [str(tmp_path / 'a.nii.gz'),
                                       str(tmp_path / 'b.mhd')]
    listing.write_bytes('# today\r\na.nii.gz\r\n'.encode('utf-8-sig'))
    assert read_scan_list(listing) == [str(tmp_path / 'a.nii.gz')]


def test_a_folder_tree_finds_files_and_dicom_folders(tmp_path):
    """NIfTI (also .hdr / .img pairs) / MetaImage / NRRD files and folders
    of DICOM files (by extension or by their DICM magic) at any depth,
    named by their path; hidden entries, a .raw beside its .mhd, an .img
    beside its .hdr, other files and the run's --out-dir passed over; a
    clash of names and an empty tree refused."""
    tree = tmp_path / 'archive'
    for path, data in [('p01/ct.nii.gz', b'x'), ('p01/CT_2/1.dcm', b'x'),
                       ('p02/CT_2/IM0001', b'\0' * 128 + b'DICMrest'),
                       ('p02/lung.mhd', b'x'), ('p02/lung.raw', b'x'),
                       ('p02/notes.txt', b'x'), ('p03/a.nrrd', b'x'),
                       ('p03/b.hdr', b'x'), ('p03/b.img', b'x'),
                       ('.hidden/x.nii', b'x'), ('out/p/findings_sr.dcm', b'x')]:
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    assert find_scans(tree, skip=tree / 'out') == [
        NamedScan(str(tree / 'p01' / 'ct.nii.gz'), 'p01_ct'),
        NamedScan(str(tree / 'p01' / 'CT_2'), 'p01_CT_2'),
        NamedScan(str(tree / 'p02' / 'lung.mhd'), 'p02_lung'),
        NamedScan(str(tree / 'p02' / 'CT_2'), 'p02_CT_2'),
        NamedScan(str(tree / 'p03' / 'a.nrrd'), 'p03_a'),
        NamedScan(str(tree / 'p03' / 'b.hdr'), 'p03_b')]  # its .img: data
    (tree / 'p01_ct.nii').write_bytes(b'x')
    with pytest.raises(ValueError, match="would both write their results to "
                       "the folder 'p01_ct'"):
        find_scans(tree)
    with pytest.raises(ValueError, match='no scan found'):
        find_scans(tree / 'out', skip=tree / 'out' / 'p')
    with pytest.raises(FileNotFoundError, match='no such folder'):
        find_scans(tmp_path / 'nope')
