"""Symbolic distillation parts: teacher data, backends (PySR / operon), LPO constraints, fronts.

`workbench.methods.symbolic` drives them; nothing here touches the run store.
"""
