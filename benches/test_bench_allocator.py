"""The backbone forward with and without xadt's allocator tuning, in fresh processes.

``pytest benches/test_bench_allocator.py --run-slow -s``: prints, for each setting, wall time,
user and system CPU, minor page faults and windows per CPU-second of six EfficientNet-Lite0
forwards of 32 windows (224 px) on two threads. System time is what the tuning removes; compare
it within one run (other load on the machine changes wall time, not the system share).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_FORWARD = """
import json, resource, time
import torch
from xadt.backbones import create_backbone
from xadt.host import load_registry
torch.set_num_threads(2)
backbone = create_backbone("efficientnet_lite0", registry=load_registry())
x = torch.rand(32, 3, 224, 224)
with torch.inference_mode():
    backbone(x)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(6):
        backbone(x)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
print(json.dumps({"wall": t1 - t0, "user": user, "sys": system,
                  "faults": r1.ru_minflt - r0.ru_minflt, "per_cpu_s": 192 / (user + system)}))
"""


@pytest.mark.slow
def test_forward_with_and_without_the_allocator_tuning() -> None:
    for tuning in ("0", "1", "0", "1"):
        env = {**os.environ, "XADT_MALLOC_TUNING": tuning, "XADT_DISABLE_PLUGIN_AUTOLOAD": "1"}
        out = subprocess.run(
            [sys.executable, "-c", _FORWARD], env=env, capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"tuning={tuning}: wall {r['wall']:.2f} s, user {r['user']:.2f} s, "
            f"sys {r['sys']:.2f} s ({r['sys'] / r['user']:.1%} of user), "
            f"minor faults {r['faults']}, {r['per_cpu_s']:.1f} windows per CPU-second"
        )
        assert r["user"] > 0
