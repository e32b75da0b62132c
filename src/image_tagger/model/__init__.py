"""The types, states and error kinds every layer shares; imports nothing else of the package."""
