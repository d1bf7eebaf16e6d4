"""A PyTorch optimizer described as data, in the sandbox child.

A test asks for `optimizer` (built at the top level: `optim.SGD(model.parameters(),
lr=..., momentum=0.9, nesterov=True)`); the live object never leaves the child. What
crosses: its class, its hyperparameters per parameter group (numbers, booleans, tuples,
text), and each parameter it holds by shape and, when a top-level `nn.Module` of the
notebook owns it, by that module's name for it (`model.0.weight`), so a test can say which
of the model's parameters the optimizer would never update.

Only source text here (sent with the probes, compiled in the child): importing this never
imports torch. The child-side names start with `_grader_` so that no student name is
shadowed where the probes run.
"""
from __future__ import annotations

TORCH_OPTIMIZER_SOURCE = '''

def _grader_torch_optimizer(value, scope, plain):
    import sys
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.optim.Optimizer):
        return None
    owners = {}
    for var, obj in list(scope.items())[:5000]:
        if var.startswith("_") or not isinstance(obj, torch.nn.Module):
            continue
        try:
            for pname, p in list(obj.named_parameters())[:10000]:
                owners.setdefault(id(p), (var + "." + pname)[:200])
        except Exception:
            pass
    groups = []
    for group in list(value.param_groups)[:64]:
        params = [p for p in list(group.get("params", []))[:10000] if isinstance(p, torch.Tensor)]
        groups.append({
            "hyperparameters": {str(k)[:100]: plain(v) for k, v in list(group.items())[:64] if k != "params"},
            "shapes": [[int(d) for d in p.shape][:16] for p in params],
            "owners": [owners.get(id(p), "") for p in params],
        })
    return {"framework": "torch", "class": type(value).__name__[:100], "module": type(value).__module__[:200],
            "defaults": {str(k)[:100]: plain(v) for k, v in list(getattr(value, "defaults", {}).items())[:64]},
            "groups": groups}
'''

__all__ = ["TORCH_OPTIMIZER_SOURCE"]
