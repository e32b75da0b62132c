"""The jobs every entry point calls: publish (build, push, verify, report) and rollback."""
