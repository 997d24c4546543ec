"""Class-conditional DCGAN on the 5,000 embedded MNIST digits: ask for a digit, get that digit.

Run:
    ganjax train --config configs/cdcgan_mnist.py --workdir runs/cdcgan_mnist
    ganjax sample --workdir runs/cdcgan_mnist --per-class 8 --out digits.png   # a row per digit
    ganjax sample --workdir runs/cdcgan_mnist --class 7 --num 100 --out sevens.npz

The DCGAN of configs/dcgan_mnist.py made class-conditional: G reads the digit through
conditional BatchNorm (a gain of 1 + embedding and a bias per class in every BatchNorm; Miyato &
Koyama 2018, BigGAN), D through the projection term (Miyato & Koyama 2018). With
eval.features=classifier (the classifier of `ganjax train-features --dataset mnist_5k`) every
evaluation reports the conditional accuracy: the share of samples of class k that the classifier
calls k. Measured result: benchmarks/results/conditional_mnist_cpu.json (see its `command`).
"""

from configs import dcgan_mnist


def get_config():
    """dcgan_mnist with conditional BatchNorm in G and a projection D."""
    config = dcgan_mnist.get_config()
    config.model.conditional = True
    config.model.g_conditioning = 'both'
    config.model.d_head = 'projection'
    config.eval.every = 1000
    config.eval.num_samples = 500
    config.eval.features = 'classifier'
    return config
