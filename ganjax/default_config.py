"""Every config key of ganjax, with its default. Experiment configs import this and override.

It lives inside the package so that an installed ganjax (not only a source checkout) has its
defaults; configs/default.py re-exports it for the repository's config files.

Run (from the repository root):
    ganjax train --config configs/default.py --workdir runs/default

This default trains the DCGAN on the embedded MNIST digits with a width and length suited to a GPU.
Expected result: see configs/dcgan_mnist.py, which is the same model sized for a 2-core CPU.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Returns the default config; every key that exists is set here."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # initialisation, per-step randomness and data order all derive from it
    # float32 | bf16: bf16 runs activations, matmuls and convs in bfloat16 while parameters,
    # optimizer states, BatchNorm statistics, logits and losses stay float32 (no loss scaling).
    config.precision = 'float32'
    # Modules imported before the config is checked: names (importable: installed or on
    # PYTHONPATH) or paths of .py files, e.g. ('my_losses.py',). A user's own losses and
    # penalties register themselves there (ganjax.register_loss); the run's config.json lists
    # them, so the run resumes, samples and evaluates from its workdir alone.
    config.imports = ()

    config.model = ml_collections.ConfigDict()
    config.model.arch = 'dcgan'  # ganjax.models.ARCHITECTURES: mlp | dcgan | resnet | resnet1d
    config.model.latent_dim = 100
    config.model.g_features = 64  # base width of G (DCGAN ngf, ResNet channels, MLP hidden units)
    config.model.d_features = 64  # base width of D
    config.model.mlp_layers = 3  # hidden layers of the MLP pair
    # MLP widths per hidden layer (() = mlp_layers x g_features / d_features), e.g. scGAN's
    # (256, 512, 1024) for G and (1024, 512, 256) for D; g_residual concatenates each hidden
    # layer's input to its output (CTGAN's generator).
    config.model.g_widths = ()
    config.model.d_widths = ()
    config.model.g_residual = False
    # ganjax.models.layers.UPSAMPLE: transpose_phases (DCGAN's 4x4 stride-2 transposed conv, computed
    # as 2^d small convs) | transpose (nn.ConvTranspose) | conv_d2s (3x3 conv + depth-to-space) |
    # resize_conv (nearest x2 + 3x3 conv)
    config.model.upsample = 'transpose_phases'
    config.model.downsample = 'space_to_depth'  # DCGAN D: space_to_depth | strided (see dcgan.py)
    config.model.g_norm = 'batch'  # batch | layer | none
    config.model.d_norm = 'batch'  # batch | layer | none (gradient penalties want layer or none)
    config.model.g_spectral_norm = False
    config.model.d_spectral_norm = False
    # G's last layer: tanh | none | relu (non-negative, exact zeros) | library_size (ReLU, then
    # each sample scaled to sum to model.library_size: scGAN's LSN layer).
    config.model.output_activation = 'tanh'
    config.model.library_size = 0.0
    # arch='resnet1d' (DNA, Killoran et al. 2017 / FBGAN): residual blocks, their conv width and
    # the weight of their residual branch; G's output softmax | gumbel_softmax, the logits divided
    # by `temperature`. Channels are g_features / d_features.
    config.model.res_blocks = 5
    config.model.kernel_size = 5
    config.model.res_scale = 0.3
    config.model.seq_output = 'softmax'
    config.model.temperature = 1.0
    config.model.param_dtype = 'float32'  # storage dtype of parameters (see `precision`)
    # Class-conditional G and D over the dataset's classes; needs labelled data.
    config.model.conditional = False
    # How a conditional G reads its label: norm (per-class gain and bias of every BatchNorm /
    # LayerNorm, gain = 1 + embedding) | concat (one-hot label appended to z) | both.
    config.model.g_conditioning = 'norm'
    # D's output layer: auto (projection when conditional, else logit) | logit | projection
    # (Miyato & Koyama 2018) | acgan (adds a K-class auxiliary classifier, Odena et al. 2017;
    # conditional) | kplus1 (K real classes + fake, Salimans et al. 2016; G unconditional,
    # semi-supervised with data.num_labels).
    config.model.d_head = 'auto'

    config.data = ml_collections.ConfigDict()
    # ganjax.data.DATASETS: mnist_5k | tfds | image_folder | csv | fasta | ring8 | grid25
    config.data.name = 'mnist_5k'
    config.data.tfds_name = ''  # for name=tfds: mnist, cifar10, celeb_a, ...
    config.data.data_dir = ''  # tfds data_dir ('' = tfds default, ~/tensorflow_datasets)
    config.data.path = ''  # folder for image_folder, file for csv
    config.data.standardize = False  # csv: model sees each column as z-scores (train split stats)
    # Expression tables (name=expression: .h5ad/.csv/.tsv/.npz at data.path; pbmc68k_reduced;
    # see ganjax/data/expression.py): the .h5ad matrix ('' = X, 'raw' = raw.X, or a layer), the
    # obs / table column of labels (cell types; '' = none) and the table's cell-name column.
    config.data.layer = ''
    config.data.label_column = ''
    config.data.index_column = ''
    # What the file holds (auto | counts | log1p) and the preprocessing recorded with the run:
    # none | library (each cell to target_sum counts) | log1p_library (then log1p).
    config.data.values = 'auto'
    config.data.preprocess = 'none'
    config.data.target_sum = 10000.0
    config.data.num_genes = 0  # keep the N most variable genes (training split); 0 = all
    # Rows with NaN / inf / non-numeric cells or the wrong cell count: error | drop (counted).
    config.data.bad_rows = 'error'
    config.data.image_size = 0  # 0 = native size; else center-crop and resize to this square size
    config.data.channels = 0  # 0 = native; 1 or 3 converts grayscale <-> RGB
    # image_folder only (ganjax/data/image_folder.py). Intensities: none (by bit depth) |
    # percentile (per channel, the training split's `percentiles` -> [-1, 1], clipped; stored with
    # the run and inverted when samples are written).
    config.data.normalize = 'none'
    config.data.percentiles = (0.5, 99.5)  # (low, high) for normalize='percentile'
    # > 0: train on crop_size squares of images of any size (then resized to image_size if set):
    # crops_per_image seeded random crops per image (crop_mode='random'), or every tile of a
    # centred grid (crop_mode='tile'); drawn once when the folder is loaded.
    config.data.crop_size = 0
    config.data.crops_per_image = 16
    config.data.crop_mode = 'random'
    # Leave unreadable or odd files out (logged with a count) instead of stopping at the first.
    config.data.skip_bad_files = False
    # fasta only (ganjax/data/fasta.py): one-hot [seq_length, 4] DNA. seq_length 0 = the first
    # record's length. Longer records: error | random_crop | centre_crop | skip; shorter: error |
    # pad (with seq_pad: A, C, G, T, or N = an all-zero row) | skip. N and other IUPAC codes:
    # skip (the record) | uniform (one allowed base, drawn once). Labels: seq_label_regex (its
    # first group, searched in the header) or seq_label_table (record id, label).
    config.data.seq_length = 0
    config.data.seq_long = 'error'
    config.data.seq_short = 'error'
    config.data.seq_pad = 'N'
    config.data.seq_ambiguous = 'skip'
    config.data.seq_label_regex = ''
    config.data.seq_label_table = ''
    # JASPAR matrix IDs the sequence metrics scan for, e.g. ('MA0139.1',); () = the motifs of a
    # planted.json beside the FASTA file (the default data), else none.
    config.data.seq_motifs = ()
    # How `ganjax sample --out x.fa` decodes the generator's per-base probabilities: argmax |
    # sample (draws each base from them, with the --seed of the command).
    config.data.seq_decode = 'argmax'
    config.data.eval_fraction = 0.1  # held out when a dataset has no evaluation split
    config.data.split_seed = 0  # seed of that train/eval split
    # > 0: train on this many examples of the training split (a random subset drawn with
    # data.split_seed; small-data experiments); the eval split is unchanged. 0 = all.
    config.data.train_examples = 0
    # Semi-supervised training (model.d_head='kplus1'): keep the labels of num_labels training
    # examples (0 = all), balanced over classes and chosen by label_seed; the rest are used
    # unlabelled. Each D update then also reads labelled_batch_size examples drawn from the
    # labelled ones (as Salimans et al. do), beside data.batch_size examples of the whole split.
    config.data.num_labels = 0
    config.data.label_seed = 0
    config.data.labelled_batch_size = 0
    config.data.batch_size = 64  # global batch size of each D and G update
    config.data.prefetch = 2  # batches prepared ahead on a background thread (0 = none)
    # How the host pipeline reads ahead: thread (one thread; fastest for in-memory sources on a
    # small host, benchmarks/README.md) | grain (grain's `data.threads` threads, or `data.workers`
    # worker processes that decode away from the training process, for many-core hosts).
    config.data.pipeline = 'thread'
    config.data.workers = 0
    config.data.threads = 1
    # Keep the whole training split on every device and send only batch indices each step:
    # auto (when it fits in data.on_device_max_mb) | always | never (host pipeline + prefetch).
    config.data.on_device = 'auto'
    config.data.on_device_max_mb = 1024

    config.loss = ml_collections.ConfigDict()
    config.loss.name = 'non_saturating'  # ganjax.losses.LOSSES
    config.loss.weight_clip = 0.0  # > 0: clip D's weights to [-c, c] after each update (WGAN: 0.01)
    # Weight of the class cross-entropy of the acgan and kplus1 heads (ACGAN's L_C; the
    # supervised term of the K+1 discriminator).
    config.loss.class_weight = 1.0
    # G minimises ||mean f(real) - mean f(fake)||^2 over D's last features instead of its
    # adversarial loss (feature matching, Salimans et al. 2016; their semi-supervised setup).
    config.loss.feature_matching = False

    config.penalty = ml_collections.ConfigDict()
    config.penalty.name = 'none'  # ganjax.penalties.PENALTIES
    config.penalty.weight = 10.0  # lambda (WGAN-GP, DRAGAN) or gamma (R1, R2)
    config.penalty.interval = 1  # lazy regularization: apply every k D updates, scaled by k

    config.optim = ml_collections.ConfigDict()
    # ganjax.optim.OPTIMIZERS: adam | adamw | rmsprop | sgd | optimistic_adam (Daskalakis et al.)
    config.optim.name = 'adam'
    config.optim.g_lr = 2e-4
    config.optim.d_lr = 2e-4
    config.optim.b1 = 0.5  # Adam beta1 (DCGAN: 0.5); SGD momentum
    config.optim.b2 = 0.999  # Adam beta2; RMSProp decay
    config.optim.eps = 1e-8
    config.optim.weight_decay = 0.0  # adamw only
    # optimistic_adam only: update -lr ((1 + optimism) r_t - optimism r_{t-1}), r_t Adam's step;
    # 1 = the paper's 2 r_t - r_{t-1}, 0 = Adam.
    config.optim.optimism = 1.0
    config.optim.grad_clip_norm = 0.0  # > 0: clip each network's gradient global norm
    config.optim.schedule = 'constant'  # constant | linear | cosine (decay to 0 over the run)
    # Length of the linear/cosine schedule in steps; 0 = train.num_steps when the run starts. Fixed
    # then and stored with the run, so resuming with another train.num_steps keeps the schedule.
    config.optim.schedule_steps = 0

    # Differentiable augmentation of everything D sees, real and fake (ganjax.augment): DiffAugment
    # (Zhao et al. 2020) and the adaptive probability of StyleGAN2-ADA (Karras et al. 2020).
    config.augment = ml_collections.ConfigDict()
    config.augment.policy = ''  # '' = off; comma-separated: color, translation, cutout
    config.augment.p = 1.0  # probability of each op per example (ADA: the initial p, e.g. 0)
    config.augment.ada_target = 0.0  # > 0: adjust p towards r_t = E[sign(D(real))] = this (0.6)
    config.augment.ada_interval = 4  # steps between adjustments of p
    config.augment.ada_kimg = 500.0  # thousands of real images for p to move by 1

    config.ema = ml_collections.ConfigDict()
    config.ema.decay = 0.999  # EMA of G's parameters, used for samples
    config.ema.warmup = True  # decay = min(decay, (1 + t) / (10 + t))

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 20000  # G updates
    config.train.n_critic = 1  # D updates per G update
    # The classes of a conditional G's fakes: uniform (each class equally often) | data (the
    # classes of the real batch of the same update: the data's proportions, and a gradient
    # penalty's interpolates join a real and a fake of one class; for imbalanced classes).
    config.train.fake_labels = 'uniform'
    # How the players' updates are ordered (ganjax.dynamics): alternating (n_critic D updates, then
    # G against the updated D) | simultaneous (G's gradient against D as the step found it) |
    # extragradient (both extrapolate, then update with the gradients there; needs n_critic=1).
    config.train.updates = 'alternating'
    # Steps per compiled call (a lax.scan over k batches): hides launch overhead for small models.
    # Logging, sampling and checkpoints happen between calls, so their intervals should be
    # multiples of k (other steps run one per call).
    config.train.steps_per_call = 1
    config.train.log_every = 100  # metrics to JSONL and TensorBoard
    config.train.sample_every = 1000  # PNG grid of EMA samples from fixed noise
    config.train.checkpoint_every = 1000
    config.train.keep_checkpoints = 3
    config.train.num_samples = 64  # fixed-noise samples in each grid
    config.train.progress = True  # progress bar when stderr is a terminal
    config.train.compilation_cache = True  # persistent XLA cache under ~/.cache/ganjax

    # Evaluation of the EMA generator during training (ganjax.evaluate): metrics against the
    # held-out split go to WORKDIR/eval/history.jsonl and TensorBoard (eval/*), and the checkpoint
    # with the best `best_metric` so far is kept in WORKDIR/best.
    config.eval = ml_collections.ConfigDict()
    config.eval.every = 0  # steps between evaluations (0 = none during training)
    config.eval.num_samples = 2000  # generated and held-out samples (capped at the held-out size)
    config.eval.batch_size = 250  # samples per generate-and-extract batch (50 batches per call)
    # auto (raw values for vectors, classifier for images) | raw | classifier | inception
    config.eval.features = 'auto'
    config.eval.features_dir = ''  # classifier of train-features ('' = features/<dataset>)
    config.eval.inception_weights = ''  # '' = $GANJAX_INCEPTION_WEIGHTS or ~/.cache/ganjax/...
    config.eval.best_metric = 'fid'  # ganjax.metrics.goals.METRIC_GOALS; '' = no best checkpoint

    # A population study (`ganjax sweep`, ganjax/sweep.py): every variant x setting x seed is a
    # member; members differing only in hyperparameters that GANState.hparams holds train as one
    # vmapped program. Strings, so that they survive JSON and --config overrides.
    config.sweep = ml_collections.ConfigDict()
    config.sweep.seeds = ()  # e.g. (0, 1, 2, 3, 4); () = (seed,)
    config.sweep.variants = ()  # 'NAME: key=value key=value', e.g. 'hinge: loss.name=hinge'
    config.sweep.grid = ()  # 'key=v1,v2,...': the cartesian product over the listed keys
    config.sweep.points = ()  # 'key=value key=value': listed settings (times the grid)
    # 'key=log_uniform(LOW,HIGH)' | 'key=uniform(LOW,HIGH)' | 'key=choice(A,B,...)'
    config.sweep.random = ()
    config.sweep.num_random = 0  # samples drawn of `random` (each times the grid and points)
    config.sweep.random_seed = 0
    # > 1: a mesh axis 'member' of this many devices splits the population (each device trains
    # its share of the members); the rest of the devices split each member's batch.
    config.sweep.member_devices = 1
    # 0: a program vmaps all its members at once. n > 0: it loops over them n at a time (each
    # pass vmapped; activations of n members at a time, for populations that do not fit in
    # memory). Slower where measured: benchmarks/README.md, "Populations".
    config.sweep.members_per_pass = 0

    # How the step is spread over devices and hosts (ganjax.parallel).
    config.parallel = ml_collections.ConfigDict()
    config.parallel.strategy = 'jit'  # jit (sharded over a device mesh) | pmap (for comparison)
    config.parallel.num_devices = 0  # devices used (0 = all, over every host)
    # Size of the mesh's 'fsdp' axis: params, optimizer states and EMA are sharded over it
    # (ZeRO-3 / FSDP style) and the batch over all devices; 1 = replicated state.
    config.parallel.fsdp = 1
    config.parallel.fsdp_min_size = 16384  # leaves with fewer elements stay replicated
    # Multi-host: jax.distributed.initialize. 'auto' initializes when the coordinator is given
    # here or by JAX_COORDINATOR_ADDRESS, or a cluster (SLURM, Open MPI, TPU pod) is detected.
    config.parallel.distributed = 'auto'  # auto | on | off
    config.parallel.coordinator_address = ''  # host:port of process 0
    config.parallel.num_processes = 0  # 0 = from the environment
    config.parallel.process_id = -1  # -1 = from the environment
    return config
