"""Every config key of ganjax, with its default (defined in ganjax/default_config.py, inside the
package, so that an installed ganjax has it too). Experiment configs import this and override.

Run (from the repository root):
    ganjax train --config configs/default.py --workdir runs/default

This default trains the DCGAN on the embedded MNIST digits with a width and length suited to a GPU.
Expected result: see configs/dcgan_mnist.py, which is the same model sized for a 2-core CPU.
"""

from ganjax.default_config import get_config

__all__ = ['get_config']
