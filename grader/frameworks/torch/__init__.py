"""PyTorch adapters: `describe` (in the sandbox child: a student's `nn.Module` as data),
`rebuild` (in the grading process: that data back into a module, from an allow-list),
`graph` (the module as the framework-neutral `LayerGraph` the checks read) and
`outputs` (the reference's weights transplanted, outputs compared)."""
