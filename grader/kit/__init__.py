"""The student kit: what a course hands students so they can self-check without the solutions.

A kit holds the template notebook, its support files and a self-check bundle: the visible
tests, and the reference's answers those tests need, recorded at export time. Modules:

* `values`: recorded values on disk (JSON, `.npy` loaded with `allow_pickle=False`); never pickle;
* `models` (Keras) and `torch_models` (PyTorch): a reference model as what the checks read
  of it (layer graph, weights as arrays, outputs), never a config that rebuilds it; what both
  share is `plain`, and `model_records` picks one of the two, so imports run one way;
* `record`: a `reference` that answers from the real reference module and writes down
  every (function, arguments) -> value it was asked for;
* `replay`: the kit's `reference`, answering the same calls from the recording only, and
  the visible tests' seed (made from public facts, never from the secret);
* `safety`: which visible tests can run from a recording at all (named when not);
* `leak_forms`: the leak scan's checks for a model that rebuilds and for a function that
  answers like the reference;
* `export`: building the kit folder (probes and course-module stand-ins included), and the
  leak scan that refuses to write solutions;
* `readme`: the student's README in the kit.
"""
