"""Running code in a fresh Python process: what tests need when TensorFlow must start anew.

TensorFlow can split the CPU into logical devices, or choose its oneDNN
kernels, only before its runtime starts, and the test process has started it.
"""

import json
import os
import subprocess
import sys
import textwrap


def run_python(script: str, timeout: float = 300, **env: str | None) -> dict:
    """Run ``script`` in a fresh interpreter and return the JSON object it prints last.

    ``env`` sets variables for the child (``None`` removes one).
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=timeout, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
