"""nih_ln: ``convert_dataset.py --preset nih_ln`` (its options and doc)."""
import functools, os.path as osp, runpy, sys  # noqa: E401
main = functools.partial(runpy.run_path(osp.join(osp.dirname(osp.abspath(__file__)), 'convert_dataset.py'))['main'], preset='nih_ln')  # noqa: E501
if __name__ == '__main__': sys.exit(main())  # noqa: E701
