"""Grading a whole class: many submissions in parallel under a wall-clock budget each
(`batch`, `supervisor`, `process`), the resumable SQLite gradebook (`gradebook`), the
instructor's class report (`report`), scale-out on Dask (`cluster`), and what they share:
finding submissions without being fooled by their names or links (`submissions`), showing
those names safely on terminals, in spreadsheets and as folders (`names`), and the
normalized code the report compares (`codeshape`).

Data flows one way: batch grades, the gradebook stores, the report reads the gradebook;
none imports a module downstream of it, and the shared helpers import none of them.
"""
