"""Grading a whole class: many submissions in parallel under a wall-clock budget each
(`batch`, `supervisor`, `process`), the resumable SQLite gradebook (`gradebook`), the
instructor's class report (`report`), scale-out on Dask (`cluster`), and what they share:
finding submissions without being fooled by their names or links (`submissions`), showing
those names safely on terminals, in spreadsheets and as folders (`names`), and the
normalized code the report compares (`codeshape`).

After the autograder: who is who and how much time they had (`roster`, `manifest`), what
people decided (`decisions`: written scores and overrides, kept in the gradebook), the one
function that folds those and late penalties into a final grade (`final`), the files
derived from the gradebook (`outputs`), and the instructor's tools to decide (`review`,
`review_page`, `overrides`).

Data flows one way: batch grades, the gradebook stores, outputs/report/review read the
gradebook; none imports a module downstream of it, and the shared helpers import none of
them.
"""
