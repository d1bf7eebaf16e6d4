"""What grading produced, independent of how it is shown: the result model and teaching notes."""
from grader.results.model import (Status, SubmissionResult, Table, TestResult, Visibility,
                                  submission_result_from_dict, test_result_from_dict)
from grader.results.notes import collecting_notes, note, open_notes, take_notes

__all__ = ["Status", "SubmissionResult", "Table", "TestResult", "Visibility", "collecting_notes", "note",
           "open_notes", "submission_result_from_dict", "take_notes", "test_result_from_dict"]
