"""The ``confidently`` command line. Each module registers its commands on :data:`app`."""

from confidently.cli import canary as _canary  # noqa: F401  (registers commands)
from confidently.cli import data as _data  # noqa: F401
from confidently.cli import evaluate as _evaluate  # noqa: F401
from confidently.cli import finetune as _finetune  # noqa: F401
from confidently.cli import recalibrate as _recalibrate  # noqa: F401
from confidently.cli import sagemaker as _sagemaker  # noqa: F401
from confidently.cli import scoring as _scoring  # noqa: F401
from confidently.cli import serve as _serve  # noqa: F401
from confidently.cli.app import app, main

__all__ = ["app", "main"]
