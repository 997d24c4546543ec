"""Test setup: 8 simulated CPU devices and a persistent compilation cache, before jax loads."""

import os

# LLVM optimization level 0 halves XLA's compile time on the CPU, which dominates these tiny tests;
# it changes speed, not results beyond float rounding.
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8'
                           ' --xla_backend_optimization_level=0').strip()
os.environ.setdefault('GANJAX_CACHE_DIR', os.path.join(os.path.expanduser('~'), '.cache',
                                                       'ganjax', 'xla-tests'))

import jax  # noqa: E402

# Compile time dominates these tiny tests; the cache makes a second run of the suite much faster.
jax.config.update('jax_compilation_cache_dir', os.environ['GANJAX_CACHE_DIR'])
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.2)
