"""Monitoring's computation, without Django: plain data in, plain data out (drift.py)."""
