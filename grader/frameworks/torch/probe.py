"""The built-in probe a torch assignment's children load beside the student's code: it
runs a module `torch.fx` cannot trace, with forward hooks (see `child/describe.run_with_hooks`).
Only a string here, so that importing it never imports torch."""
from __future__ import annotations

TORCH_PROBE = "grader_torch_run"
TORCH_PROBE_SOURCE = f'''

def {TORCH_PROBE}(name, args, kwargs, inputs, state, training):
    try:  # the framework's sandbox-side package, mounted alone under bubblewrap (grader.sandbox.hooks)
        from grader_framework.describe import run_with_hooks as _run_with_hooks
    except ImportError:
        from grader.frameworks.torch.child.describe import run_with_hooks as _run_with_hooks
    return _run_with_hooks(globals(), name, args, kwargs, inputs, state, training)
'''

__all__ = ["TORCH_PROBE", "TORCH_PROBE_SOURCE"]
