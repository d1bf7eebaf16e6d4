"""A Keras optimizer described as data, in the sandbox child: its class and its
configuration (`get_config()`: learning_rate, beta_1, momentum, nesterov, ...). Keras
creates an optimizer's variables only when it first applies gradients, so no parameter
list crosses; a compiled model's optimizer is reached as `model.optimizer`.

Only source text (sent with the probes, compiled in the child): importing this never
imports TensorFlow.
"""
from __future__ import annotations

KERAS_OPTIMIZER_SOURCE = '''

def _grader_keras_optimizer(value, plain):
    import sys
    bases = []
    for root in ("keras", "tf_keras"):
        module = sys.modules.get(root)
        base = getattr(getattr(module, "optimizers", None), "Optimizer", None)
        if isinstance(base, type):
            bases.append(base)
    if not bases or not isinstance(value, tuple(bases)):
        return None
    try:
        config = dict(value.get_config())
    except Exception:
        config = {}
    hyper = {str(k)[:100]: plain(v) for k, v in list(config.items())[:64]}
    return {"framework": "keras", "class": type(value).__name__[:100], "module": type(value).__module__[:200],
            "defaults": hyper, "groups": []}
'''

__all__ = ["KERAS_OPTIMIZER_SOURCE"]
