"""What an instructor uses to write and ship an assignment, before any student submits:
a master notebook turned into the student's template (`assign`), a new assignment folder
that works as created (`scaffold`), and the soundness checks run before release
(`validate`). Platform bundles live in `grader.export`, the student kit in `grader.kit`.
"""
