"""The untrusted side: the preloading worker, the per-submission child, and the wire format.

Modules here other than `client` must import nothing from the rest of `grader`: under
bubblewrap this package is mounted alone, without the grader, references or tests.
"""
