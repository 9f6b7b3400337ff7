"""Which prompt versions are served: the registry, the live catalog and where versions come
from (files, cluster watch).
"""
