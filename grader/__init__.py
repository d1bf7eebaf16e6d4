"""grader: a pytest-style autograder for deep-learning notebook assignments.

Data flows one way: notebook -> sandbox -> checks -> results -> render.
"""
__version__ = "0.1.0"
