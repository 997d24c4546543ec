"""Converts pytorch-fid's Inception weights (.pth) to the .npz file that `load_inception` reads.

    python -m ganjax.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth [--out PATH]

The .pth is at https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
pt_inception-2015-12-05-6726825d.pth. PyTorch is needed to read it, for this conversion only.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping

from ganjax.errors import ConfigError
from ganjax.metrics.inception import (WEIGHTS_ENV, convert_torch_state_dict, count_params,
                                      default_weights_path, save_weights)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m ganjax.metrics.convert_inception',
        description='Convert pytorch-fid\'s FID Inception weights to ganjax\'s .npz format.')
    parser.add_argument('pth', metavar='PTH_FILE',
                        help='pt_inception-2015-12-05-6726825d.pth from pytorch-fid')
    parser.add_argument('--out', default='',
                        help=f'the .npz to write (default: ${WEIGHTS_ENV} if set, else '
                        '~/.cache/ganjax/fid_inception_v3.npz)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: reads the .pth, converts, checks and writes the .npz.

    Args:
      argv: arguments without the program name (sys.argv[1:] if None).

    Returns:
      The exit status: 0 on success, 1 without torch, 2 for a missing or unsuitable file.
    """
    args = _parser().parse_args(argv)
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        print('convert_inception needs PyTorch to read the .pth file: `pip install torch` (for '
              'this conversion only; ganjax does not use it afterwards)', file=sys.stderr)
        return 1
    if not os.path.isfile(args.pth):
        print(f'convert_inception: no file {args.pth}', file=sys.stderr)
        return 2
    # weights_only: a .pth is a pickle, and this refuses anything in it that is not tensors.
    try:
        state = torch.load(args.pth, map_location='cpu', weights_only=True)
    except Exception as e:  # pylint: disable=broad-except  # torch raises many kinds for a bad file
        first_line = (str(e).strip().splitlines() or [''])[0]
        print(f'convert_inception: {args.pth} is not a PyTorch state dict ({type(e).__name__}: '
              f'{first_line})', file=sys.stderr)
        return 2
    if not isinstance(state, Mapping):
        print(f'convert_inception: {args.pth} holds a {type(state).__name__}, not a state dict',
              file=sys.stderr)
        return 2
    # .float(): numpy has no bfloat16, and the network's variables are float32 anyway.
    arrays = {k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).numpy()
              if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    try:
        variables = convert_torch_state_dict(arrays)
    except ConfigError as e:
        print(f'convert_inception: {args.pth}: {e}', file=sys.stderr)
        return 2
    out = args.out or default_weights_path()
    save_weights(variables, out)
    print(f'wrote {out}: {count_params(variables):,} parameters (plus batch-norm statistics)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
