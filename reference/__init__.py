"""Instructor-only reference solutions, one module per assignment.

Kept outside the `grader` package (which is what gets installed) so they are never
shipped to students; the grader and the tests import them from a repository checkout.
"""
