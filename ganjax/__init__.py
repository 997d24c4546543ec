"""ganjax: high-performance GAN research in JAX.

Modules: `models` (generators and discriminators by name), `losses` and `penalties` (tables of pure
functions), `train_step` (the pure adversarial step), `data` (datasets by name), `train` (the loop).
"""

__version__ = '0.1.0'
