"""The assignment's specification: assignment.toml read and checked, written questions, the late policy."""
