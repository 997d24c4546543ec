"""DCGAN on random 64x64 crops of the immunohistochemistry image that scikit-image bundles.

The microscopy path of the image_folder source on data that needs no download: fields of one
512 x 512 IHC image (colonic glands, DAB + hematoxylin), random crops drawn per field, per-channel
percentile normalisation from the training fields (stored with the run, inverted when samples are
written), whole fields held out for evaluation.

Run (from the repository root):
    pip install 'ganjax[microscopy]'                        # scikit-image, for its bundled images
    python -m ganjax.data.prepare_microscopy --out data/microscopy
    ganjax train --config configs/microscopy_crops.py --workdir runs/microscopy_crops

Expected result: 4 fields of 256 x 256 (data/microscopy/ihc, README.md beside them with the
images' terms); 3 train fields give 768 crops, the held-out one 256. After 1,500 steps (~42
minutes on the shared 2-core CPU, 0.4-0.8 steps/s) the EMA generator's samples have the crops'
colours (DAB brown, pale background) and their large-scale layout, but no nuclei, membranes or
glands: benchmarks/results/microscopy_crops_cpu.png (real crops left, samples right; made by
`python benchmarks/microscopy_crops.py --workdir runs/microscopy_crops`) and its .md/.json with
the measured numbers. A short CPU run, not a converged model.

For your own data: data.path to a folder of PNG/TIFF (8- or 16-bit, 1 to many channels; see
ganjax/data/image_folder.py for the TIFF layout rule), data.crop_size to the crop side and, for
16-bit data, `ganjax sample --out samples.tif` writes 16-bit TIFF samples with every channel.
"""

from ganjax import default_config as default


def get_config():
    """DCGAN-64 at widths 32/32 on 64x64 crops, percentile-normalised; D with spectral norm
    and no BatchNorm, hinge loss (SNGAN's recipe, Miyato et al. 2018)."""
    config = default.get_config()
    config.model.arch = 'dcgan'
    config.model.latent_dim = 64
    # DCGAN-64 at the paper's widths (64) takes ~1.2 s a step on 2 CPU cores
    # (benchmarks/results/throughput_DCGAN-64_single_float32_b64_cpu.json); 32 is ~4x cheaper.
    config.model.g_features = 32
    config.model.d_features = 32
    # 768 crops of three fields are little data: with DCGAN's BatchNorm D and the non-saturating
    # loss, D reached accuracy 1.00 by step 100 and G collapsed to one pattern by step 250.
    # Spectral norm in D (without BatchNorm) and the hinge loss kept the two in balance.
    config.model.d_norm = 'none'
    config.model.d_spectral_norm = True
    config.loss.name = 'hinge'
    config.data.name = 'image_folder'
    config.data.path = 'data/microscopy/ihc'
    config.data.crop_size = 64
    config.data.crops_per_image = 256
    config.data.crop_mode = 'random'
    config.data.normalize = 'percentile'
    config.data.percentiles = (0.5, 99.5)
    config.data.eval_fraction = 0.25  # one of the four fields
    config.data.batch_size = 32
    config.ema.decay = 0.995
    config.train.num_steps = 1500
    config.train.log_every = 50
    config.train.sample_every = 250
    config.train.checkpoint_every = 500
    config.train.num_samples = 36
    return config
