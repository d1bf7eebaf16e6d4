"""What is specific to Keras (Keras 3 and tf_keras). The checks reach it only through
`adapter.ADAPTER` (found by `grader.checks.adapters`): `walk` and `graph` (a model as the
neutral `LayerGraph`), `models` and `forward` (outputs with the reference's weights),
`equivalence` (the numerical test of two layers). Besides: `rebuild` and `model_pool` (a
returned model's config back into a model), `child` (the sandbox's side: the worker's
preload, seeding, Keras 2 semantics, deferred weights, layer locations, a returned model
as data), `tensorflow_import`, `optimizer`. Importing this package imports no
Keras: each module imports TensorFlow only when it runs a model."""
