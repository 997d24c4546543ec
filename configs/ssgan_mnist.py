"""Semi-supervised digit classification from 100 labels (Salimans et al. 2016's K+1 GAN).

Run:
    ganjax train --config configs/ssgan_mnist.py --workdir runs/ssgan_mnist
    ganjax classify --workdir runs/ssgan_mnist --input digits/ --out predictions.csv
    python benchmarks/semi_supervised.py   # 3 label seeds, beside a supervised-only baseline

The embedded digits' 4,500 training images, of which only 100 keep their label (10 per class,
chosen by data.label_seed); D has K = 10 real-class logits and the fake class's logit fixed at 0
(model.d_head='kplus1'), so D(x is real) = sigmoid(logsumexp(logits)). D minimises the cross-
entropy of the 100 labelled digits (a stream of data.labelled_batch_size of them in every D
update) plus the real/fake loss of the whole split; G minimises feature matching on D's last
features (loss.feature_matching), which Salimans et al. found best for classification (and worse
for sample quality). D is the DCGAN stack of dcgan_mnist with LayerNorm instead of BatchNorm
(one batch mixes the unlabelled and labelled streams, and fakes come in another: batch
statistics would differ between them). Salimans et al.'s MNIST D also had Gaussian input noise
and weight normalization, which ganjax does not copy.

Expected result (benchmarks/semi_supervised.py, 1,200 steps, 3 label seeds, 2 shared CPU cores):
held-out accuracy 0.795 +- 0.009, against 0.755 +- 0.008 for the same D trained on the 100
labelled digits alone; far from Salimans et al.'s 99% on full MNIST (60,000 unlabelled digits,
a regularised MLP D, hundreds of epochs): benchmarks/README.md says why.
"""

from configs import dcgan_mnist


def get_config():
    """K+1 DCGAN-28 discriminator, feature matching, 100 labels."""
    config = dcgan_mnist.get_config()
    config.model.d_head = 'kplus1'
    config.model.d_norm = 'layer'
    config.model.d_features = 32
    config.loss.feature_matching = True
    config.loss.class_weight = 1.0
    config.data.num_labels = 100
    config.data.label_seed = 0
    config.data.labelled_batch_size = 64
    config.optim.g_lr = 3e-4
    config.optim.d_lr = 3e-4
    config.train.num_steps = 1200  # what was measured (see above)
    config.eval.every = 0
    config.eval.best_metric = ''
    return config
