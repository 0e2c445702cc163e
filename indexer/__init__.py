"""Offline jobs (build a library, train, evaluate): ``python -m indexer COMMAND``."""
