"""The discovery agent: a LangGraph state machine over the run store (see graph.py)."""
