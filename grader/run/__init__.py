"""One submission graded: the pytest plugin and its fixtures, the submission's sandbox channels, collected tests, the grading loop."""
