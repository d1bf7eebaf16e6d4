"""The student kit: what a course hands students so they can self-check without the solutions.

A kit holds the template notebook, its support files and a self-check bundle: the visible
tests, and the reference's answers those tests need, recorded at export time. Modules:

* `values`: recorded values on disk (JSON, `.npy` loaded with `allow_pickle=False`, models
  as Keras config JSON + weights `.npz`, rebuilt through `grader.rebuild`); never pickle;
* `record`: a `reference` that answers from the real reference module and writes down
  every (function, arguments) -> value it was asked for;
* `replay`: the kit's `reference`, answering the same calls from the recording only;
* `safety`: which visible tests can run from a recording at all (named when not);
* `export`: building the kit folder, and the leak scan that refuses to write solutions.
"""
