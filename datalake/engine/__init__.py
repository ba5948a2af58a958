"""The data-lake engine: pure computation over files and Arrow data, no Django import.

Services in datalake/services.py adapt ORM rows for it; tests and benchmarks call it directly.
"""
