"""What class grading needs beside the grading itself: finding submissions without being
fooled by their names or links (`submissions`), showing those names safely on terminals,
in spreadsheets and as folders (`names`), the normalized code the class report compares
(`codeshape`), and grading processes held to a wall-clock budget (`supervisor`).

`grader.batch`, `grader.gradebook`, `grader.report` and `grader.cluster` build on these;
nothing here imports them, so data flows one way.
"""
