"""Orchestration: whole commands built from the layers below.

``single`` (``lvmbench run``), ``resume`` (``run --resume``), ``rescore``
(``lvmbench eval``), ``series`` (``run --model a,b,c``) and ``sweep``.  Nothing
below this package imports it.
"""
