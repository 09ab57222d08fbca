"""gallon: GALLON (LLM + GNN knowledge distilled into an MLP) for molecular property prediction."""

__version__ = "0.1.0"
