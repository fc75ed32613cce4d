#!/usr/bin/env python3
"""Rockpool 3.1.0's `autoencoder_quantization` on the weights of a network JSON, timed.

Our own script, called by `dynap bench --rockpool-python PY` with the benchmark's quantization workload
(`w_in`, `w_rec`, all neurons on one core). Prints one line:
`autoencoder_seconds T relative_rms_error E` (3000 epochs, step 1e-3, numpy seed 0, as the golden cases).
"""
import json
import logging
import os
import sys
import time
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")
logging.disable(logging.WARNING)
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from rockpool.devices.dynapse import autoencoder_quantization  # noqa: E402

net = json.load(open(sys.argv[1]))
w_in = np.array(net["w_in"], dtype=np.float64)
w_rec = np.array(net["w_rec"], dtype=np.float64)
n = w_rec.shape[0]
np.random.seed(0)
t = time.perf_counter()
spec = autoencoder_quantization(
    n_cluster=1, core_map=np.zeros(n, dtype=int), weights_in=w_in, weights_rec=w_rec,
    Iscale=1e-8, n_bits=4, fixed_epoch=True, num_epoch=3000, step_size=1e-3,
)
seconds = time.perf_counter() - t
iw = np.array([spec[f"Iw_{k}"][0] for k in range(4)], dtype=np.float64)


def recon(mask, sign):
    bits = np.stack([(np.asarray(mask) >> k) & 1 for k in range(4)], -1)
    return np.asarray(sign) * (bits @ iw) / 1e-8


ri = recon(spec["weights_in"][0], spec["sign_in"][0])
rr = recon(spec["weights_rec"][0], spec["sign_rec"][0])
err = np.sqrt(((ri - w_in) ** 2).sum() + ((rr - w_rec) ** 2).sum()) / np.sqrt((w_in**2).sum() + (w_rec**2).sum())
print(f"autoencoder_seconds {seconds} relative_rms_error {err}")
