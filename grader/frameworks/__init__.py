"""What is specific to one deep-learning framework, kept behind adapters of its own
(`grader.frameworks.keras`), so the rest of the grader reads as framework-neutral."""
