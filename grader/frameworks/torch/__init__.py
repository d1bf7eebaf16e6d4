"""PyTorch adapters: `adapter` (what the checks ask for, found by
`grader.checks.adapters`), `child` (the sandbox's side: the worker's preload, and
`child.describe`, a student's `nn.Module` as data), `rebuild` (in the grading process: that data back into a module, from an
allow-list), `graph` (the module as the framework-neutral `LayerGraph` the checks read),
`outputs` (the reference's weights transplanted, outputs compared) and `untraced` (a
module torch.fx cannot trace, read through forward hooks in the child)."""
